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
        self.publish_claimed(now, held.conn, &held.scope, held.stream, &held.target);
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

#[cfg(test)]
mod tests {
    use crate::hub::{HubConfig, HubEvent};
    use crate::rtmp::ClientEvent;
    use crate::scope_path::ScopePath;
    use crate::testing::Harness;
    use alloc::string::String;
    use alloc::vec::Vec;

    fn statuses(events: Vec<ClientEvent>) -> Vec<(String, String)> {
        events
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::Status {
                    code, description, ..
                } => Some((code, description)),
                _ => None,
            })
            .collect()
    }

    fn has(events: &[(String, String)], code: &str) -> bool {
        events.iter().any(|(c, _)| c == code)
    }

    fn publish(h: &mut Harness) -> (usize, u64) {
        let p = h.connect("live");
        let s = h.create_stream(p);
        h.hub_events.clear();
        h.peers[p].client.publish(s, "cam").unwrap();
        h.drive();
        let claim = h.hub_events.iter().find_map(|e| match e {
            HubEvent::PublishClaim { claim, name, .. } if name == "cam" => Some(*claim),
            _ => None,
        });
        (p, claim.expect("no PublishClaim event"))
    }

    /// A clustered hub starts a publish only when its claim is granted,
    /// refuses it with the runtime's reason, and ends a publisher whose
    /// name another node took over without telling its players.
    #[test]
    fn publishes_wait_for_their_claim() {
        let mut h = Harness::new(HubConfig::default());
        h.hub.require_publish_claims(&[]);
        let v = h.connect("live");
        let vs = h.create_stream(v);
        h.peers[v].client.play(vs, "cam", -1.0).unwrap();
        h.drive();
        h.take(v);

        let (p, claim) = publish(&mut h);
        assert!(
            !has(&statuses(h.take(p)), "NetStream.Publish.Start"),
            "started before the claim was decided"
        );
        let live = ScopePath::app("live").unwrap();
        assert!(!h.hub.is_published(&live, "cam"));
        let now = h.now;
        assert!(h.hub.resolve_publish_claim(now, claim, Ok(())));
        h.drive();
        assert!(has(&statuses(h.take(p)), "NetStream.Publish.Start"));
        assert!(has(&statuses(h.take(v)), "NetStream.Play.PublishNotify"));
        // A claim is answered once.
        assert!(!h.hub.resolve_publish_claim(now, claim, Ok(())));

        let (q, refused) = publish(&mut h);
        let why = String::from("cam is already being published (on node n1)");
        assert!(!h.hub.resolve_publish_claim(now, refused, Err(why.clone())));
        h.drive();
        let answer = statuses(h.take(q));
        assert!(
            answer
                .iter()
                .any(|(c, d)| c == "NetStream.Publish.BadName" && *d == why),
            "{answer:?}"
        );
        assert!(h.hub.is_published(&live, "cam"));

        h.hub_events.clear();
        let reason = "was taken over by a publisher on node n2";
        assert!(h.hub.end_publish(now, &live, "cam", reason));
        h.drive();
        let told = statuses(h.take(p));
        assert!(
            told.iter()
                .any(|(c, d)| c == "NetStream.Unpublish.Success" && d.contains(reason)),
            "{told:?}"
        );
        assert!(!has(&statuses(h.take(v)), "NetStream.Play.UnpublishNotify"));
        assert!(h.hub.has_waiting_players(&live, "cam"));
        assert!(
            h.hub_events
                .iter()
                .any(|e| matches!(e, HubEvent::PlayWaiting { name, .. } if name == "cam"))
        );
        assert!(
            !h.hub_events
                .iter()
                .any(|e| matches!(e, HubEvent::Unpublished { .. })),
            "a taken-over name is not ours to unregister"
        );
    }

    /// Exempt protocols (relays pulling from the owner) publish at once;
    /// a normal unpublish is reported for the registry.
    #[test]
    fn exempt_publishes_start_at_once_and_unpublish_is_reported() {
        let mut h = Harness::new(HubConfig::default());
        h.hub.require_publish_claims(&[crate::rtmp::PROTOCOL]);
        let p = h.connect("live");
        let s = h.create_stream(p);
        h.hub_events.clear();
        h.peers[p].client.publish(s, "cam").unwrap();
        h.drive();
        assert!(has(&statuses(h.take(p)), "NetStream.Publish.Start"));
        assert!(
            !h.hub_events
                .iter()
                .any(|e| matches!(e, HubEvent::PublishClaim { .. }))
        );
        h.peers[p].client.close_stream(s).unwrap();
        h.drive();
        assert!(
            h.hub_events
                .iter()
                .any(|e| matches!(e, HubEvent::Unpublished { name, .. } if name == "cam"))
        );
    }
}
