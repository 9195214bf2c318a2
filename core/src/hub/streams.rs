//! Live streams: publish, play, unpublish, and media fan-out.

use super::fanout::{Encoder, encode_media};
use super::outbox::PushOutcome;
use super::request::{ConnId, Delivery, Level, MediaDelivery, MediaKind, MediaPriority};
use super::stream::{CachedMessage, LiveStream, MediaStamp, Player, Publisher, classify};
use super::{Decision, Hub, HubEvent, PublishConflict, Timer, validate_stream_name};
use crate::Limits;
use crate::message::DataMessage;
use crate::scope_path::{ScopePath, split_query};
use crate::time::{Duration, Instant};
use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

/// Where a publish stands with the cluster's claims (`claims.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Claim {
    /// A client's publish: held for a claim if the hub requires claims.
    Unclaimed,
    /// Back from a granted claim: started without another.
    Granted,
}

impl Hub {
    /// Refuses a publish or play: an error status to the client, a log event.
    pub(super) fn refuse_stream(
        &mut self,
        conn: ConnId,
        stream: u32,
        code: &'static str,
        what: &str,
        name: &str,
        why: String,
    ) {
        let reason = format!("{what} {name:?}: {why}");
        self.status(conn, stream, Level::Error, code, why);
        self.mail
            .events
            .push_back(HubEvent::Refused { conn, reason });
    }

    pub(super) fn status(
        &mut self,
        conn: ConnId,
        stream: u32,
        level: Level,
        code: &'static str,
        description: String,
    ) {
        self.mail.deliver(
            conn,
            Delivery::Status {
                stream,
                level,
                code,
                description,
            },
        );
    }

    /// `conn`'s publish of `target` in `scope`: checked, held for a
    /// cluster claim if the hub requires claims (unless it comes back
    /// granted from one, [`Claim::Granted`]), then started.
    pub(super) fn publish(
        &mut self,
        now: Instant,
        conn: ConnId,
        scope: &ScopePath,
        stream: u32,
        target: &str,
        claim: Claim,
    ) {
        let (name, query) = split_query(target);
        let refuse = |hub: &mut Hub, why: String| {
            hub.refuse_stream(
                conn,
                stream,
                "NetStream.Publish.BadName",
                "publish",
                name,
                why,
            );
        };
        if let Err(why) = validate_stream_name(name) {
            return refuse(self, why.to_owned());
        }
        let key = (scope.clone(), name.to_owned());
        let current = self.streams.get(&key).and_then(|s| s.publisher);
        // A conflict is decided only after every other check passed.
        let replace = match current {
            None => false,
            Some(old) if old.conn == conn => {
                return refuse(self, format!("{name} is already being published"));
            }
            Some(_) => self.config.publish_conflict == PublishConflict::Replace,
        };
        if current.is_some() && !replace {
            return refuse(self, format!("{name} is already being published"));
        }
        if self
            .conns
            .get(&conn)
            .is_some_and(|c| c.publishing.iter().any(|(s, _)| *s == stream))
        {
            return refuse(self, "this stream already publishes".to_owned());
        }
        let scope_streams = self.scopes.get(scope).map_or(0, |s| s.streams);
        if !self.streams.contains_key(&key) && scope_streams >= self.config.max_streams_per_scope {
            return refuse(self, "too many streams in this scope".to_owned());
        }
        if let Decision::Reject(why) = self.app.on_publish(conn, scope, name, query) {
            return refuse(self, why);
        }
        // Every local check passed: a clustered hub now asks the cluster.
        if claim == Claim::Unclaimed && self.hold_for_claim(conn, scope, stream, name, target) {
            return;
        }
        if let Some(old) = current {
            self.take_over(now, &key, old);
        }
        let timeout = self.config.publisher_idle_timeout;
        if timeout != Duration::ZERO {
            self.timers.insert((
                now + timeout,
                Timer::Publisher(key.0.clone(), key.1.clone()),
            ));
        }
        let live = self.stream_entry(key);
        if replace {
            live.reset_for_takeover();
        } else {
            live.reset_media();
        }
        live.publisher = Some(Publisher { conn, stream });
        live.last_media = Some(now);
        let players: Vec<(ConnId, u32)> = live.players.iter().map(|p| (p.conn, p.stream)).collect();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.publishing
                .push((stream, (scope.clone(), name.to_owned())));
        }
        self.mail.deliver(conn, Delivery::StreamBegin { stream });
        self.status(
            conn,
            stream,
            Level::Status,
            "NetStream.Publish.Start",
            format!("{name} is now published"),
        );
        for (player, player_stream) in players {
            // Waiting players start on the first keyframe.
            if let Some(outbox) = self.mail.outboxes.get_mut(&player) {
                outbox.await_keyframe(player_stream);
            }
            self.mail.deliver(
                player,
                Delivery::StreamBegin {
                    stream: player_stream,
                },
            );
            self.status(
                player,
                player_stream,
                Level::Status,
                "NetStream.Play.PublishNotify",
                format!("{name} is now published"),
            );
        }
        // A takeover keeps the stream's players (a recorder among them).
        if !replace {
            self.mail.events.push_back(HubEvent::Published {
                scope: scope.clone(),
                name: name.to_owned(),
            });
        }
    }

    /// Ends `old`'s publish of `key` for a new publisher (see
    /// [`PublishConflict::Replace`]): its players are not told (they stay
    /// for the new publisher); the old publisher is told and closed.
    fn take_over(&mut self, now: Instant, key: &(ScopePath, String), old: Publisher) {
        let name = &key.1;
        if let Some(c) = self.conns.get_mut(&old.conn) {
            c.publishing
                .retain(|(s, k)| !(*s == old.stream && k == key));
        }
        if let Some(live) = self.streams.get_mut(key) {
            live.publisher = None;
        }
        self.status(
            old.conn,
            old.stream,
            Level::Status,
            "NetStream.Unpublish.Success",
            format!("{name} was taken over by a new publisher"),
        );
        self.close_conn(
            now,
            old.conn,
            format!("replaced by a new publisher of {name}"),
        );
    }

    /// Drops the publisher of `scope`/`name` if it sent no media for
    /// `publisher_idle_timeout` (else checks again when it would be due).
    pub(super) fn check_publisher_idle(&mut self, now: Instant, scope: ScopePath, name: String) {
        let timeout = self.config.publisher_idle_timeout;
        if timeout == Duration::ZERO {
            return;
        }
        let key = (scope, name);
        let Some(live) = self.streams.get(&key) else {
            return;
        };
        let Some(publisher) = live.publisher else {
            return;
        };
        let due = live.last_media.unwrap_or(now) + timeout;
        if due > now {
            self.timers.insert((due, Timer::Publisher(key.0, key.1)));
            return;
        }
        let secs = timeout.as_millis() / 1000;
        let name = key.1;
        self.status(
            publisher.conn,
            publisher.stream,
            Level::Error,
            "NetStream.Publish.Idle",
            format!("no media for {secs}s: publishing of {name} stopped"),
        );
        self.close_conn(
            now,
            publisher.conn,
            format!("publisher of {name} sent no media for {secs}s"),
        );
    }

    /// The stream entry for `key`, created (and counted in its scope) if new.
    pub(super) fn stream_entry(&mut self, key: (ScopePath, String)) -> &mut LiveStream {
        if !self.streams.contains_key(&key)
            && let Some(s) = self.scopes.get_mut(&key.0)
        {
            s.streams += 1;
            s.idle_since = None;
        }
        self.streams.entry(key).or_default()
    }

    pub(super) fn unpublish(
        &mut self,
        now: Instant,
        conn: ConnId,
        scope: &ScopePath,
        stream: u32,
        name: &str,
    ) {
        let key = (scope.clone(), name.to_owned());
        let Some(live) = self.streams.get_mut(&key) else {
            return;
        };
        if live.publisher != Some(Publisher { conn, stream }) {
            return;
        }
        live.publisher = None;
        live.reset_media();
        let players: Vec<(ConnId, u32)> = live.players.iter().map(|p| (p.conn, p.stream)).collect();
        for (player, player_stream) in players {
            self.mail.deliver(
                player,
                Delivery::StreamEof {
                    stream: player_stream,
                },
            );
            self.status(
                player,
                player_stream,
                Level::Status,
                "NetStream.Play.UnpublishNotify",
                format!("{name} is now unpublished"),
            );
        }
        self.mail.events.push_back(HubEvent::Unpublished {
            scope: scope.clone(),
            name: name.to_owned(),
        });
        self.drop_stream_if_unused(now, &key);
    }

    pub(super) fn drop_stream_if_unused(&mut self, now: Instant, key: &(ScopePath, String)) {
        if self.streams.get(key).is_some_and(LiveStream::is_unused) {
            self.streams.remove(key);
            if let Some(s) = self.scopes.get_mut(&key.0) {
                s.streams = s.streams.saturating_sub(1);
            }
            self.refresh_scope(now, &key.0);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn play(
        &mut self,
        now: Instant,
        conn: ConnId,
        scope: &ScopePath,
        stream: u32,
        target: &str,
        start: f64,
        encoder: Encoder,
    ) {
        let (name, query) = split_query(target);
        let not_found = |hub: &mut Hub, why: String| {
            let code = "NetStream.Play.StreamNotFound";
            hub.refuse_stream(conn, stream, code, "play", name, why);
        };
        if let Err(why) = validate_stream_name(name) {
            return not_found(self, why.to_owned());
        }
        let key = (scope.clone(), name.to_owned());
        let publishing = self
            .streams
            .get(&key)
            .is_some_and(|s| s.publisher.is_some());
        if start >= 0.0 && !publishing {
            return not_found(
                self,
                format!("{name} is not live (recordings are not served)"),
            );
        }
        let scope_streams = self.scopes.get(scope).map_or(0, |s| s.streams);
        if !self.streams.contains_key(&key) && scope_streams >= self.config.max_streams_per_scope {
            return not_found(self, "too many streams in this scope".to_owned());
        }
        if let Decision::Reject(why) = self.app.on_play(conn, scope, name, query) {
            return not_found(self, why);
        }
        // A new play on the same message stream replaces the old one.
        let previous = self.conns.get_mut(&conn).and_then(|c| {
            let i = c.playing.iter().position(|(s, _)| *s == stream)?;
            Some(c.playing.remove(i).1)
        });
        if let Some(previous) = previous {
            self.stop_playing(now, conn, scope, &previous);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.playing.push((stream, name.to_owned()));
        }
        let live = self.stream_entry(key.clone());
        live.players.push(Player {
            conn,
            stream,
            encoder,
            needs_headers: false,
            starts_on_next: false,
        });
        self.mail.deliver(conn, Delivery::StreamBegin { stream });
        self.status(
            conn,
            stream,
            Level::Status,
            "NetStream.Play.Reset",
            format!("playing and resetting {name}"),
        );
        self.status(
            conn,
            stream,
            Level::Status,
            "NetStream.Play.Start",
            format!("started playing {name}"),
        );
        self.send_join_state(conn, &key, stream, encoder);
        if !publishing {
            self.mail.events.push_back(HubEvent::PlayWaiting {
                scope: scope.clone(),
                name: name.to_owned(),
            });
        }
    }

    /// What a late joiner needs: metadata, sequence headers, then the GOP.
    pub(super) fn send_join_state(
        &mut self,
        conn: ConnId,
        key: &(ScopePath, String),
        stream: u32,
        encoder: Encoder,
    ) {
        let Some(live) = self.streams.get_mut(key) else {
            return;
        };
        if live.publisher.is_none() {
            if let Some(outbox) = self.mail.outboxes.get_mut(&conn) {
                outbox.await_keyframe(stream);
            }
            if let Some(player) = live
                .players
                .iter_mut()
                .rev()
                .find(|p| p.conn == conn && p.stream == stream)
            {
                player.starts_on_next = true;
            }
            return;
        }
        let gop_len = live.gop_len();
        if gop_len == 0
            && let Some(outbox) = self.mail.outboxes.get_mut(&conn)
        {
            outbox.await_keyframe(stream);
        }
        // Headers are stamped like the first frame the player gets (so
        // they are encoded for each joiner; they are small).
        let start = live
            .gop_stamp(0)
            .map(|s| s.timestamp)
            .or(live.last_timestamp);
        // The player's clock starts there (for codecs that count from it);
        // one that joined before any media starts on the first message.
        let encoder = match start {
            Some(ts) => encoder.starting_at(ts),
            None => encoder,
        };
        if let Some(player) = live
            .players
            .iter_mut()
            .rev()
            .find(|p| p.conn == conn && p.stream == stream)
        {
            player.encoder = encoder;
            player.starts_on_next = start.is_none();
        }
        let head = [&live.metadata, &live.audio_header, &live.video_header];
        for message in head.into_iter().flatten() {
            let message = start.map_or_else(|| message.clone(), |ts| message.restamped(ts));
            let encoded = encode_media(encoder, &message, &mut self.mail.encoded);
            let delivery = media_delivery(stream, message.stamp(), encoded);
            self.mail.deliver(conn, Delivery::Media(delivery));
        }
        for index in 0..gop_len {
            let Some(stamp) = live.gop_stamp(index) else {
                break;
            };
            let stats = &mut self.mail.encoded;
            let Some(encoded) =
                live.gop_encoded(index, encoder, |m| encode_media(encoder, m, stats))
            else {
                break;
            };
            let delivery = media_delivery(stream, stamp, encoded);
            self.mail.deliver(conn, Delivery::Media(delivery));
        }
    }

    pub(super) fn stop_playing(
        &mut self,
        now: Instant,
        conn: ConnId,
        scope: &ScopePath,
        name: &str,
    ) {
        let key = (scope.clone(), name.to_owned());
        if let Some(live) = self.streams.get_mut(&key) {
            live.players.retain(|p| p.conn != conn);
        }
        self.drop_stream_if_unused(now, &key);
    }

    pub(super) fn close_stream(&mut self, now: Instant, conn: ConnId, stream: u32) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(scope) = state.scope.clone() else {
            return;
        };
        let published = state
            .publishing
            .iter()
            .position(|(s, _)| *s == stream)
            .map(|i| state.publishing.remove(i).1.1);
        let played = state
            .playing
            .iter()
            .position(|(s, _)| *s == stream)
            .map(|i| state.playing.remove(i).1);
        if let Some(name) = published {
            self.unpublish(now, conn, &scope, stream, &name);
            self.status(
                conn,
                stream,
                Level::Status,
                "NetStream.Unpublish.Success",
                format!("{name} is now unpublished"),
            );
        }
        if let Some(name) = played {
            self.stop_playing(now, conn, &scope, &name);
        }
    }

    pub(super) fn media(
        &mut self,
        now: Instant,
        conn: ConnId,
        stream: u32,
        kind: MediaKind,
        timestamp: u32,
        payload: Bytes,
    ) {
        let (payload, is_metadata) = match kind {
            MediaKind::Data => normalise_data(payload, &self.config.limits),
            _ => (payload, false),
        };
        // The key is borrowed from the publisher's own record (disjoint
        // fields of `self`): no key is built per relayed message.
        let Some(state) = self.conns.get(&conn) else {
            return;
        };
        let Some((_, key)) = state.publishing.iter().find(|(s, _)| *s == stream) else {
            return; // media on a stream that does not publish: ignored
        };
        let Some(live) = self.streams.get_mut(key) else {
            return;
        };
        live.last_media = Some(now);
        let message = CachedMessage {
            kind,
            priority: classify(kind, &payload),
            timestamp: live.relay_timestamp(timestamp),
            payload,
        };
        if is_metadata {
            live.set_metadata(&message);
        }
        let mail = &mut self.mail;
        mail.encodings.start_media();
        let keyframe = kind == MediaKind::Video && message.priority == MediaPriority::Key;
        for index in 0..live.players.len() {
            let Some(mut player) = live.players.get(index).copied() else {
                break;
            };
            if player.starts_on_next
                && let Some(p) = live.players.get_mut(index)
            {
                p.encoder = p.encoder.starting_at(message.timestamp);
                p.starts_on_next = false;
                player = *p;
            }
            let encoded = mail
                .encodings
                .media(player.encoder, &message, &mut mail.encoded);
            if player.needs_headers && keyframe {
                for header in [&live.audio_header, &live.video_header]
                    .into_iter()
                    .flatten()
                {
                    let header = header.restamped(message.timestamp);
                    let bytes = encode_media(player.encoder, &header, &mut mail.encoded);
                    let delivery = media_delivery(player.stream, header.stamp(), bytes);
                    mail.deliver(player.conn, Delivery::Media(delivery));
                }
                if let Some(p) = live.players.get_mut(index) {
                    p.needs_headers = false;
                }
            }
            let outcome = mail.deliver(
                player.conn,
                Delivery::Media(media_delivery(player.stream, message.stamp(), encoded)),
            );
            if let Some(PushOutcome::Queued { cut_back: true, .. }) = outcome
                && let Some(p) = live.players.get_mut(index)
            {
                p.needs_headers = !keyframe;
            }
        }
        // After relaying, so the GOP keeps an encoding just made (shared
        // with the players' queues) rather than its own copy of the payload.
        live.remember(&message, mail.encodings.first(), self.config.max_gop_bytes);
    }
}

/// Strips `@setDataFrame` from a data message (players get `onMetaData`, as
/// from nginx-rtmp) and tells whether it is metadata. Undecodable data is
/// relayed untouched.
pub(super) fn normalise_data(payload: Bytes, limits: &Limits) -> (Bytes, bool) {
    match DataMessage::decode(&payload, limits) {
        Ok(data) => {
            let is_metadata = data.metadata().is_some();
            if data.is_set_data_frame() {
                (data.without_set_data_frame().to_bytes(), is_metadata)
            } else {
                (payload, is_metadata)
            }
        }
        Err(_) => (payload, false),
    }
}

pub(super) fn media_delivery(stream: u32, stamp: MediaStamp, encoded: Bytes) -> MediaDelivery {
    MediaDelivery {
        stream,
        kind: stamp.kind,
        priority: stamp.priority,
        timestamp: stamp.timestamp,
        encoded,
    }
}
