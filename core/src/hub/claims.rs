//! Publish claims: a hub in a cluster asks before a publish starts.
//!
//! A clustered runtime calls [`Hub::require_publish_claims`]. From then on
//! a publish that passed every local check (name, limits, the
//! application's `on_publish`, the local publish-conflict rule) does not
//! start at once: the hub holds it and emits [`HubEvent::PublishClaim`].
//! The runtime decides it (for tern: a compare-and-set on the cluster's
//! stream registry) and answers with [`Hub::resolve_publish_claim`]; the
//! client meanwhile waits for its `NetStream.Publish.*` status. Granted,
//! the publish runs the local checks again (the hub may have changed while
//! the claim was out) and starts; refused, the client gets
//! `NetStream.Publish.BadName` with the runtime's reason.
//!
//! [`HubEvent::Unpublished`] tells the runtime that a claimed name is no
//! longer published here; [`Hub::end_publish`] drops a publisher whose
//! claim another node took over.

use super::request::{ConnId, Level, Protocol};
use super::{Hub, HubEvent};
use crate::scope_path::ScopePath;
use crate::time::Instant;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// A publish held for the runtime's decision.
#[derive(Debug)]
struct Held {
    conn: ConnId,
    scope: ScopePath,
    stream: u32,
    target: String,
}

/// The claim state of a hub that requires claims.
#[derive(Debug, Default)]
pub(super) struct Claims {
    /// Protocols whose publishes need no claim (relays that pull a stream
    /// from the node that claimed it).
    exempt: Vec<Protocol>,
    next: u64,
    held: BTreeMap<u64, Held>,
}

/// Held publishes at most per hub; more are refused at once (a runtime
/// that stopped answering must not make the hub grow).
const MAX_HELD: usize = 4096;

impl Hub {
    /// Publishes from now on need the runtime's grant (see the module
    /// docs), except those of connections of the `exempt` protocols.
    pub fn require_publish_claims(&mut self, exempt: &[Protocol]) {
        self.claims = Some(alloc::boxed::Box::new(Claims {
            exempt: exempt.to_vec(),
            ..Claims::default()
        }));
    }

    /// Holds `conn`'s publish for a claim if this hub requires claims and
    /// the connection is not exempt; true if it was held (or refused for
    /// too many held).
    pub(super) fn hold_for_claim(
        &mut self,
        conn: ConnId,
        scope: &ScopePath,
        stream: u32,
        name: &str,
        target: &str,
    ) -> bool {
        let protocol = self.conns.get(&conn).map(|c| c.protocol);
        let Some(claims) = self.claims.as_deref_mut() else {
            return false;
        };
        if protocol.is_some_and(|p| claims.exempt.contains(&p)) {
            return false;
        }
        if claims.held.len() >= MAX_HELD {
            self.refuse_stream(
                conn,
                stream,
                "NetStream.Publish.BadName",
                "publish",
                name,
                String::from("too many publishes wait for the cluster"),
            );
            return true;
        }
        claims.next += 1;
        let claim = claims.next;
        claims.held.insert(
            claim,
            Held {
                conn,
                scope: scope.clone(),
                stream,
                target: String::from(target),
            },
        );
        self.mail.events.push_back(HubEvent::PublishClaim {
            claim,
            scope: scope.clone(),
            name: String::from(name),
        });
        true
    }

    /// The runtime's answer to [`HubEvent::PublishClaim`] `claim`: `Ok`
    /// starts the publish (after the local checks once more), `Err` refuses
    /// it with `NetStream.Publish.BadName` and the reason. True if the
    /// publish is live now; false if it was refused or its connection is
    /// gone (a granted claim is then the runtime's to release).
    pub fn resolve_publish_claim(
        &mut self,
        now: Instant,
        claim: u64,
        decision: Result<(), String>,
    ) -> bool {
        self.mail.now = now;
        let Some(held) = self
            .claims
            .as_deref_mut()
            .and_then(|c| c.held.remove(&claim))
        else {
            return false;
        };
        let (name, _) = crate::scope_path::split_query(&held.target);
        let name = String::from(name);
        let open = self
            .conns
            .get(&held.conn)
            .is_some_and(|c| !c.closing && c.scope.as_ref() == Some(&held.scope));
        if !open {
            return false;
        }
        if let Err(why) = decision {
            self.refuse_stream(
                held.conn,
                held.stream,
                "NetStream.Publish.BadName",
                "publish",
                &name,
                why,
            );
            return false;
        }
        self.publish(
            now,
            held.conn,
            &held.scope,
            held.stream,
            &held.target,
            super::streams::Claim::Granted,
        );
        let key = (held.scope, name);
        self.streams
            .get(&key)
            .and_then(|s| s.publisher)
            .is_some_and(|p| p.conn == held.conn && p.stream == held.stream)
    }

    /// Ends the local publish of `scope`/`name` because another node took
    /// the name over: the publisher is told `NetStream.Unpublish.Success`
    /// with `reason` and closed; the stream's players stay (they get the
    /// name from its new owner) and [`HubEvent::PlayWaiting`] is emitted
    /// for them. No [`HubEvent::Unpublished`]: the claim is not ours any
    /// more. False if nobody publishes the name here.
    pub fn end_publish(
        &mut self,
        now: Instant,
        scope: &ScopePath,
        name: &str,
        reason: &str,
    ) -> bool {
        self.mail.now = now;
        let key = (scope.clone(), String::from(name));
        let Some(old) = self.streams.get(&key).and_then(|s| s.publisher) else {
            return false;
        };
        if let Some(c) = self.conns.get_mut(&old.conn) {
            c.publishing
                .retain(|(s, k)| !(*s == old.stream && *k == key));
        }
        let mut players = false;
        if let Some(live) = self.streams.get_mut(&key) {
            live.publisher = None;
            live.reset_media();
            players = !live.players.is_empty();
        }
        self.status(
            old.conn,
            old.stream,
            Level::Status,
            "NetStream.Unpublish.Success",
            format!("{name} {reason}"),
        );
        self.close_conn(now, old.conn, format!("{name} {reason}"));
        if players {
            self.mail.events.push_back(HubEvent::PlayWaiting {
                scope: scope.clone(),
                name: String::from(name),
            });
        } else {
            self.drop_stream_if_unused(now, &key);
        }
        true
    }

    /// True if `scope`/`name` has players here and no publisher (players
    /// waiting for the stream to start somewhere).
    pub fn has_waiting_players(&self, scope: &ScopePath, name: &str) -> bool {
        self.streams
            .get(&(scope.clone(), String::from(name)))
            .is_some_and(|s| s.publisher.is_none() && !s.players.is_empty())
    }

    /// True if `scope`/`name` has a local publisher.
    pub fn is_published(&self, scope: &ScopePath, name: &str) -> bool {
        self.streams
            .get(&(scope.clone(), String::from(name)))
            .is_some_and(|s| s.publisher.is_some())
    }
}
