//! The shared-object checker of the simulator, usable from outside it: by
//! `tests/tests/e2e/cluster.rs`, which records what real `tern` nodes sent to
//! its RTMP and WebSocket subscribers as JSON frames, and by
//! [`crate::cluster`] for the simulated nodes.
//!
//! One [`SoLog`] per subscriber and object feeds a [`SoReplica`] (the
//! exactly-once rules of [`crate::so_view`], in cluster mode so that it
//! records what each version changed). [`agreement`] then checks the
//! cross-subscriber rules: one global order ([`order_conflicts`]) and one
//! final state ([`state_conflicts`]).

use crate::client::ws::{ServerMsg, parse_server_msg};
use crate::so_view::{SoReplica, SubState};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use tern_core::amf0::Value;
use tern_core::message::SharedObjectMessage;

/// One subscriber's log of one object, checked as it is fed.
#[derive(Debug)]
pub struct SoLog {
    who: String,
    replica: SoReplica,
    /// Data events of one version gathered until the next message (JSON
    /// and tern-tests' RTMP entries carry one event per frame).
    batch: Option<SharedObjectMessage>,
    /// Highest version synced or stepped to.
    high: u32,
    monotonic_syncs: bool,
    single_key: bool,
    violations: Vec<String>,
}

/// What one [`SoLog`] ended with.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// Whose.
    pub who: String,
    /// Synced at the end.
    pub synced: bool,
    /// Version of the replica.
    pub version: u32,
    /// Its attributes.
    pub data: BTreeMap<String, Value>,
    /// Version → hash of what someone else's change at it did.
    pub steps: BTreeMap<u32, u64>,
    /// Rules it broke, in words.
    pub violations: Vec<String>,
}

impl SoLog {
    /// A subscriber `who` of object `name`, in cluster mode (a
    /// `SharedObject.NoWriteAccess` detaches it until the next sync).
    pub fn new(who: &str, name: &str, persistent: bool) -> SoLog {
        let mut replica = SoReplica::new(name, persistent);
        replica.allow_refusals();
        SoLog {
            who: who.to_owned(),
            replica,
            batch: None,
            high: 0,
            monotonic_syncs: false,
            single_key: false,
            violations: Vec::new(),
        }
    }

    /// A later sync must not be at a lower version than what this
    /// subscriber already had (true when every node it syncs from is
    /// linked to the sequencer; a node cut off may serve an older state).
    pub fn monotonic_syncs(mut self) -> SoLog {
        self.monotonic_syncs = true;
        self
    }

    /// Every batch changes one key (true when every writer sets one key
    /// per write): a second data event at one version is a violation.
    pub fn single_key_batches(mut self) -> SoLog {
        self.single_key = true;
        self
    }

    /// One JSON frame of protocol v1 (`docs/ws-protocol.md`), or an entry
    /// of tern-tests' RTMP client in the same shape. Every `sync` counts
    /// as the answer to a fresh `use` (a reconnect or a re-use).
    pub fn frame(&mut self, frame: &Json) {
        let persistent = self.replica.persistent;
        let parsed = parse_server_msg(&frame.to_string(), |_| persistent);
        match parsed {
            Ok(ServerMsg::So { msg, data }) => {
                if msg.name != self.replica.name {
                    return;
                }
                if data {
                    match &mut self.batch {
                        Some(b) if b.version == msg.version => {
                            for event in msg.events {
                                if self.single_key || b.events.contains(&event) {
                                    self.violations.push(format!(
                                        "{}: {event:?} at version {} again (repeated)",
                                        self.who, msg.version
                                    ));
                                } else {
                                    b.events.push(event);
                                }
                            }
                        }
                        _ => {
                            self.flush();
                            self.batch = Some(msg);
                        }
                    }
                    return;
                }
                self.flush();
                let sync = frame["op"] == "sync";
                if sync {
                    if self.monotonic_syncs && msg.version < self.high {
                        self.violations.push(format!(
                            "{}: a sync went back from {} to {}",
                            self.who, self.high, msg.version
                        ));
                    }
                    self.replica.disconnected();
                    self.replica.use_sent();
                }
                self.message(&msg);
            }
            Ok(ServerMsg::Welcome { .. }) => {}
            Ok(ServerMsg::Error { code, message }) => self
                .violations
                .push(format!("{}: server error {code}: {message}", self.who)),
            Err(e) => self.violations.push(format!("{}: {e}", self.who)),
        }
    }

    fn flush(&mut self) {
        if let Some(batch) = self.batch.take() {
            self.message(&batch);
        }
    }

    /// One message as an RTMP client gets it (a whole batch).
    pub fn message(&mut self, msg: &SharedObjectMessage) {
        if let Err(v) = self.replica.on_message(msg) {
            self.violations
                .push(format!("{} {}: {v}", self.who, self.replica.name));
        }
        if self.replica.state == SubState::Synced {
            self.high = self.high.max(self.replica.version);
        }
    }

    /// The end of the log.
    pub fn finish(mut self) -> View {
        self.flush();
        View {
            who: self.who,
            synced: self.replica.state == SubState::Synced,
            version: self.replica.version,
            data: self.replica.data.clone(),
            steps: self.replica.steps.clone().unwrap_or_default(),
            violations: self.violations,
        }
    }
}

/// One global order: every view that saw version `v` as a change saw the
/// same change. Returns the conflicts in words.
pub fn order_conflicts<'a>(
    views: impl IntoIterator<Item = (&'a str, &'a BTreeMap<u32, u64>)>,
) -> Vec<(String, String)> {
    let mut first: BTreeMap<u32, (&str, u64)> = BTreeMap::new();
    let mut out = Vec::new();
    for (who, steps) in views {
        for (version, hash) in steps {
            match first.get(version) {
                None => {
                    first.insert(*version, (who, *hash));
                }
                Some((by, h)) if h != hash => out.push((
                    who.to_owned(),
                    format!("version {version}: a different change than {by} saw (two orders)"),
                )),
                Some(_) => {}
            }
        }
    }
    out
}

/// One final state: every view at the same version with the same data.
/// Returns the differences in words.
pub fn state_conflicts<'a>(
    views: impl IntoIterator<Item = (&'a str, u32, &'a BTreeMap<String, Value>)>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut views = views.into_iter();
    let Some((first, version, data)) = views.next() else {
        return out;
    };
    for (who, v, other) in views {
        if v != version {
            out.push((
                who.to_owned(),
                format!("at version {v}, {first} at {version}"),
            ));
        }
        if other != data {
            out.push((
                who.to_owned(),
                format!(
                    "data differs from {first}'s: {}",
                    crate::scenario::diff(data, other)
                ),
            ));
        }
    }
    out
}

/// Every view's own violations, then [`order_conflicts`] and
/// [`state_conflicts`] across them; every view must be synced. `Ok` holds
/// the common version and data.
pub fn agreement(views: &[View]) -> Result<(u32, BTreeMap<String, Value>), Vec<String>> {
    let mut errors: Vec<String> = views.iter().flat_map(|v| v.violations.clone()).collect();
    for v in views.iter().filter(|v| !v.synced) {
        errors.push(format!("{}: not synced at the end", v.who));
    }
    let order = order_conflicts(views.iter().map(|v| (v.who.as_str(), &v.steps)));
    let state = state_conflicts(views.iter().map(|v| (v.who.as_str(), v.version, &v.data)));
    errors.extend(
        order
            .into_iter()
            .chain(state)
            .map(|(who, e)| format!("{who}: {e}")),
    );
    match views.first() {
        Some(v) if errors.is_empty() => Ok((v.version, v.data.clone())),
        None => Err(vec!["no views".to_owned()]),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log(who: &str, frames: &[Json]) -> View {
        let mut l = SoLog::new(who, "board", false).monotonic_syncs();
        for f in frames {
            l.frame(f);
        }
        l.finish()
    }

    #[test]
    fn agreeing_views_pass_and_two_orders_fail() {
        let sync = json!({"op": "sync", "so": "board", "version": 0, "data": {}});
        let a1 = json!({"op": "change", "so": "board", "version": 1, "key": "a", "value": 1});
        let b1 = json!({"op": "change", "so": "board", "version": 1, "key": "b", "value": 1});
        let b2 = json!({"op": "change", "so": "board", "version": 2, "key": "b", "value": 1});
        let a2 = json!({"op": "change", "so": "board", "version": 2, "key": "a", "value": 1});
        let x = log("x", &[sync.clone(), a1.clone(), b2.clone()]);
        let y = log("y", &[sync.clone(), a1, b2]);
        assert!(agreement(&[x.clone(), y]).is_ok());
        // Same final state, other order: caught.
        let z = log("z", &[sync, b1, a2]);
        let errors = agreement(&[x, z]).unwrap_err();
        assert!(
            errors.iter().any(|e| e.contains("two orders")),
            "{errors:?}"
        );
    }

    #[test]
    fn gaps_duplicates_and_backward_syncs_fail() {
        let sync = |v: u32| json!({"op": "sync", "so": "board", "version": v, "data": {}});
        let ch =
            |v: u32| json!({"op": "change", "so": "board", "version": v, "key": "k", "value": v});
        let gap = log("gap", &[sync(0), ch(1), ch(3)]);
        assert!(!gap.violations.is_empty());
        let dup = log("dup", &[sync(0), ch(1), ch(1)]);
        assert!(!dup.violations.is_empty());
        let mut two = SoLog::new("two", "board", false).single_key_batches();
        for f in [
            sync(0),
            ch(1),
            json!({"op": "change", "so": "board", "version": 1, "key": "j", "value": 0}),
        ] {
            two.frame(&f);
        }
        assert!(!two.finish().violations.is_empty());
        let back = log("back", &[sync(0), ch(1), ch(2), sync(1)]);
        assert!(back.violations.iter().any(|e| e.contains("went back")));
        // Two keys of one batch arrive as two frames of one version.
        let batch = log(
            "batch",
            &[
                sync(4),
                json!({"op": "change", "so": "board", "version": 5, "key": "a", "value": 1}),
                json!({"op": "change", "so": "board", "version": 5, "key": "b", "value": 2}),
                ch(6),
            ],
        );
        assert!(batch.violations.is_empty(), "{:?}", batch.violations);
        assert_eq!((batch.version, batch.data.len()), (6, 3));
    }
}
