//! The cluster's live streams (docs/cluster.md, "Streams"): a registry in
//! NATS KV ([`BUCKET`]), one publisher per name cluster-wide, and pulls of
//! streams that are published on another node.
//!
//! The hub requires publish claims ([`Hub::require_publish_claims`]) and
//! routes its stream events here through [`StreamJobs`]; one task
//! ([`run`]) handles them in order, together with the registry's watch and
//! the refresh of this node's entries:
//!
//! - [`Job::Claim`]: a compare-and-set on the name's key (`create` if it
//!   is free, `update` at the revision read if this node has it or the
//!   policy is `replace`), then the hub's grant or refusal. A claim that
//!   replaced another node's live publish is granted only when that node
//!   has confirmed its publisher ended ([`Entry::takes_over`]), or when
//!   its lease has surely lapsed ([`leases`](super::leases)): never two
//!   live publishers of one name.
//! - [`Job::Unpublished`]: this node's entry is deleted (at its revision,
//!   so an entry another node wrote meanwhile stays).
//! - [`Job::PlayWaiting`]: a player here waits for a name another node
//!   publishes: one pull from that node (the relay's machinery).
//! - the watch: an entry of ours that another publish overwrote means the
//!   name was taken over — the local publisher is ended and the takeover
//!   confirmed; an entry of another node for a name with players here
//!   moves their pull there.
//! - every third of the TTL: this node's entries are rewritten (at their
//!   revision) and pulls whose origin no longer holds the name are stopped.
//!
//! [`Hub::require_publish_claims`]: tern_core::hub::Hub::require_publish_claims

use super::leases::{self, Leases};
use crate::relay::Target;
use crate::server::Shared;
use crate::wakeup::Wakeup;
use async_nats::jetstream::kv;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tern_core::hub::PublishConflict;
use tern_core::scope_path::ScopePath;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// The KV bucket of live streams.
pub const BUCKET: &str = "TERN_STREAMS";
/// How long one registry operation may take.
const OP_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts of one claim's compare-and-set before it is refused.
const CLAIM_ATTEMPTS: usize = 5;
/// Jobs waiting at most (claims are never dropped: the hub bounds them).
const MAX_JOBS: usize = 65_536;
/// Ended publishes whose takeover this node still has to confirm, at most
/// (beyond it a takeover goes ahead after its wait instead).
const MAX_RELEASED: usize = 4096;
/// How often waiting takeovers are checked for their deadline.
const PENDING_CHECK: Duration = Duration::from_millis(100);

/// What the hub asked of the registry, in its order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Job {
    /// `HubEvent::PublishClaim`.
    Claim {
        claim: u64,
        scope: ScopePath,
        name: String,
    },
    /// `HubEvent::Unpublished`.
    Unpublished { scope: ScopePath, name: String },
    /// `HubEvent::PlayWaiting`.
    PlayWaiting { scope: ScopePath, name: String },
}

/// The queue from the hub's event routing to [`run`]; off (dropping
/// everything) until the cluster starts.
#[derive(Debug, Default)]
pub struct StreamJobs {
    enabled: AtomicBool,
    jobs: Mutex<VecDeque<Job>>,
    wake: Wakeup,
}

impl StreamJobs {
    /// Queues `job` if the cluster runs.
    pub fn push(&self, job: Job) {
        if !self.enabled.load(Ordering::Acquire) {
            return;
        }
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if jobs.len() >= MAX_JOBS && !matches!(job, Job::Claim { .. }) {
            warn!("cluster: stream jobs queue full; {job:?} dropped");
            return;
        }
        jobs.push_back(job);
        drop(jobs);
        self.wake.wake();
    }

    fn enable(&self) {
        self.enabled.store(true, Ordering::Release);
    }

    fn take(&self) -> VecDeque<Job> {
        std::mem::take(&mut *self.jobs.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A registry entry's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The publishing node's id.
    pub node: String,
    /// Where other nodes pull it (`host:port`).
    pub rtmp: String,
    /// This publish's id (unique across the cluster's life).
    pub publish: String,
    /// The stream's scope (`app/room…`, no leading `/`).
    pub scope: String,
    /// The stream's name.
    pub name: String,
    /// While a takeover waits: the publish id of the live publisher this
    /// entry replaces. That publisher's node clears it (writes the entry
    /// back without it) once its publisher has ended; the new publisher
    /// starts only then, or after the old one's lease has lapsed
    /// (docs/cluster.md, "Replace across nodes").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takes_over: Option<String>,
}

/// The registry key of `scope`/`name`: each segment escaped (bytes other
/// than `[A-Za-z0-9_-]` as `=XX`), joined with `.`.
pub fn key(scope: &ScopePath, name: &str) -> String {
    let mut out = String::new();
    for segment in scope
        .as_str()
        .trim_start_matches('/')
        .split('/')
        .chain(std::iter::once(name))
    {
        if !out.is_empty() {
            out.push('.');
        }
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("={b:02X}"));
            }
        }
    }
    out
}

/// The pull target for `entry`: `rtmp://<entry.rtmp>/<scope>`.
pub fn pull_target(entry: &Entry) -> Option<Target> {
    let (host, port) = entry.rtmp.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some(Target {
        tls: false,
        host: host.to_owned(),
        port: port.parse().ok()?,
        app: entry.scope.clone(),
        name: None,
        query: String::new(),
    })
}

/// Who this node is in the registry.
#[derive(Clone, Debug)]
pub struct Node {
    /// Node id.
    pub id: String,
    /// Member id (node id and incarnation): publish ids start with it.
    pub member: String,
    /// `host:port` others pull from.
    pub rtmp: String,
    /// Entries expire this long after their last write.
    pub ttl: Duration,
    /// `[streams] publish_conflict`.
    pub conflict: PublishConflict,
    /// How long a pull outlives its last player, per app.
    pub pull_idle: BTreeMap<String, Duration>,
}

/// Opens (or creates) the registry bucket. Its `max_age` is the TTL: on
/// NATS 2.9 a key has no TTL of its own, so every write keeps an entry
/// alive for `ttl`. The bucket's stream is made here with KV's settings
/// (`KV_<bucket>`, `$KV.<bucket>.>`, one message per subject, roll-ups,
/// direct get): async-nats' `create_key_value` first asks for the
/// account's limits, an answer it cannot read from nats-server 2.9.
pub async fn open(js: &async_nats::jetstream::Context, ttl: Duration) -> Result<kv::Store, String> {
    use async_nats::jetstream::stream;
    let config = stream::Config {
        name: format!("KV_{BUCKET}"),
        subjects: vec![format!("$KV.{BUCKET}.>")],
        max_messages_per_subject: 1,
        max_age: ttl,
        storage: stream::StorageType::Memory,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    };
    if let Err(e) = js.get_or_create_stream(config).await {
        // It exists with other settings (another TTL): use it as it is.
        warn!("cluster: KV bucket {BUCKET}: {e}; using the bucket as it is");
    }
    js.get_key_value(BUCKET)
        .await
        .map_err(|e| format!("KV bucket {BUCKET}: {e}"))
}

/// This node's publish of a name.
#[derive(Debug)]
struct Owned {
    publish: String,
    revision: u64,
    scope: ScopePath,
    name: String,
}

/// A claim that replaced another node's live publish, waiting for that
/// node's confirmation.
#[derive(Debug)]
struct Pending {
    claim: u64,
    publish: String,
    revision: u64,
    scope: ScopePath,
    name: String,
    /// The node whose publish it replaces (for the log).
    from: String,
    /// When it goes ahead without the confirmation.
    deadline: Instant,
}

/// A successful claim write.
struct Written {
    revision: u64,
    /// When the write was sent (the lease starts then).
    sent: Instant,
    /// The node whose live publish it replaced, if not this one.
    takes_over_from: Option<String>,
}

struct Registry {
    shared: Arc<Shared>,
    kv: kv::Store,
    node: Node,
    owned: BTreeMap<String, Owned>,
    pending: BTreeMap<String, Pending>,
    /// Publishes of this node ended by a takeover whose confirmation did
    /// not get through yet: key → publish id.
    released: BTreeMap<String, String>,
    leases: Arc<Leases>,
    publishes: u64,
}

async fn timed<T, E: std::fmt::Display>(
    op: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(OP_TIMEOUT, op).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {OP_TIMEOUT:?}")),
    }
}

fn live_entry(entry: &kv::Entry) -> Option<Entry> {
    if entry.operation != kv::Operation::Put {
        return None;
    }
    serde_json::from_slice(&entry.value).ok()
}

fn encode(entry: &Entry) -> bytes::Bytes {
    serde_json::to_vec(entry).unwrap_or_default().into()
}

impl Registry {
    fn entry(
        &self,
        publish: &str,
        scope: &ScopePath,
        name: &str,
        takes_over: Option<String>,
    ) -> Entry {
        Entry {
            node: self.node.id.clone(),
            rtmp: self.node.rtmp.clone(),
            publish: publish.to_owned(),
            scope: scope.as_str().trim_start_matches('/').to_owned(),
            name: name.to_owned(),
            takes_over,
        }
    }

    /// True if `publish` is one of this incarnation's (a node restarted
    /// under the same id is another incarnation: its publishes are taken
    /// over, not continued).
    fn is_mine(&self, publish: &str) -> bool {
        publish
            .strip_prefix(self.node.member.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }

    /// Takes `key` for a new publish: the write, or why not.
    async fn claim(
        &self,
        key: &str,
        publish: &str,
        scope: &ScopePath,
        name: &str,
    ) -> Result<Written, String> {
        let mut last = String::new();
        for _ in 0..CLAIM_ATTEMPTS {
            let current = timed(self.kv.entry(key))
                .await
                .map_err(|e| format!("the cluster's stream registry is unreachable: {e}"))?;
            let holder = current
                .as_ref()
                .and_then(|e| live_entry(e).map(|h| (e.revision, h)));
            let sent = Instant::now();
            let (takes_over_from, attempt) = match holder {
                None => {
                    let value = encode(&self.entry(publish, scope, name, None));
                    (None, timed(self.kv.create(key, value)).await)
                }
                Some((revision, holder)) => {
                    if holder.node != self.node.id && self.node.conflict == PublishConflict::Reject
                    {
                        return Err(format!(
                            "{name} is already being published (on node {})",
                            holder.node
                        ));
                    }
                    // The publish live under this entry: its own, or (while
                    // a takeover waits) the one that takeover replaces.
                    let live = holder.takes_over.clone().unwrap_or(holder.publish.clone());
                    let takes_over = (!self.is_mine(&live)).then_some(live);
                    let from = takes_over.is_some().then(|| holder.node.clone());
                    let value = encode(&self.entry(publish, scope, name, takes_over));
                    (from, timed(self.kv.update(key, value, revision)).await)
                }
            };
            match attempt {
                Ok(revision) => {
                    return Ok(Written {
                        revision,
                        sent,
                        takes_over_from,
                    });
                }
                // Another node wrote between the read and the write: read again.
                Err(e) => last = e,
            }
        }
        Err(format!(
            "the cluster's stream registry did not take the claim: {last}"
        ))
    }

    /// Answers the hub's claim `claim` with a grant; a publisher that left
    /// meanwhile has its entry deleted again.
    #[allow(clippy::too_many_arguments)]
    async fn grant(
        &mut self,
        key: String,
        claim: u64,
        publish: String,
        revision: u64,
        sent: Instant,
        scope: ScopePath,
        name: String,
    ) {
        let now = self.shared.now();
        let granted = self
            .shared
            .with_hub(|hub| hub.resolve_publish_claim(now, claim, Ok(())));
        if !granted {
            let _ = timed(self.kv.delete_expect_revision(&key, Some(revision))).await;
            return;
        }
        info!(stream = %key, publish = %publish, revision, "cluster: stream registered");
        self.leases.grant(&key, sent, &scope, &name);
        self.owned.insert(
            key,
            Owned {
                publish,
                revision,
                scope,
                name,
            },
        );
    }

    fn refuse(&self, claim: u64, why: String) {
        info!("cluster: publish refused: {why}");
        let now = self.shared.now();
        self.shared
            .with_hub(|hub| hub.resolve_publish_claim(now, claim, Err(why)));
    }

    /// A takeover of `key` waits: granted when the entry comes back
    /// without `takes_over` (the old node's confirmation), refused when
    /// someone else wrote it meanwhile.
    async fn on_pending_watch(&mut self, entry: &kv::Entry) {
        let Some(pending) = self.pending.get(&entry.key) else {
            return;
        };
        match live_entry(entry) {
            // The echo of our own write.
            Some(h) if h.publish == pending.publish && h.takes_over.is_some() => {}
            Some(h) if h.publish == pending.publish => {
                if let Some(p) = self.pending.remove(&entry.key) {
                    info!(stream = %entry.key, "cluster: node {} confirmed its publisher ended", p.from);
                    self.finish_takeover(entry.key.clone(), p).await;
                }
            }
            other => {
                if let Some(p) = self.pending.remove(&entry.key) {
                    let by =
                        other.map_or_else(|| "nobody".to_owned(), |h| format!("node {}", h.node));
                    self.refuse(
                        p.claim,
                        format!("{} was claimed by {by} while its takeover waited", p.name),
                    );
                }
            }
        }
    }

    /// Takeovers whose old node did not answer within
    /// [`leases::takeover_wait`] go ahead: by then the old publish's lease
    /// has lapsed.
    async fn expire_pending(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(p) = self.pending.remove(&key) {
                info!(stream = %key, "cluster: node {} did not confirm the takeover within {:?}; its lease has lapsed", p.from, leases::takeover_wait(self.node.ttl));
                self.finish_takeover(key, p).await;
            }
        }
    }

    /// Writes a waiting takeover's entry once more, without
    /// `takes_over`, if it is still its own (or free), and grants it: the
    /// new publish's lease starts with this write.
    async fn finish_takeover(&mut self, key: String, p: Pending) {
        let value = encode(&self.entry(&p.publish, &p.scope, &p.name, None));
        let current = match timed(self.kv.entry(&key)).await {
            Ok(current) => current,
            Err(e) => {
                let why = format!("the cluster's stream registry is unreachable: {e}");
                return self.refuse(p.claim, why);
            }
        };
        let sent = Instant::now();
        let write = match current.as_ref().map(|e| (e.revision, live_entry(e))) {
            None | Some((_, None)) => timed(self.kv.create(&key, value)).await,
            Some((revision, Some(h))) if h.publish == p.publish => {
                timed(self.kv.update(&key, value, revision)).await
            }
            Some((_, Some(h))) => Err(format!("claimed by node {} meanwhile", h.node)),
        };
        match write {
            Ok(revision) => {
                self.grant(key, p.claim, p.publish, revision, sent, p.scope, p.name)
                    .await;
            }
            Err(e) => self.refuse(p.claim, format!("{}: {e}", p.name)),
        }
    }

    /// Our publish `publish` of `entry.key` has ended because `entry`
    /// took it over: tell the new owner by writing its entry back without
    /// `takes_over` (at the revision seen, so a later write wins). Kept in
    /// `released` until that got through.
    async fn confirm_release(&mut self, entry: &kv::Entry, holder: &Entry, publish: &str) {
        if holder.takes_over.as_deref() != Some(publish) {
            return;
        }
        let confirmed = Entry {
            takes_over: None,
            ..holder.clone()
        };
        match timed(
            self.kv
                .update(&entry.key, encode(&confirmed), entry.revision),
        )
        .await
        {
            Ok(_) => {
                self.released.remove(&entry.key);
                debug!(stream = %entry.key, "cluster: takeover confirmed");
            }
            Err(e) => {
                debug!(stream = %entry.key, "cluster: takeover not confirmed yet: {e}");
                if self.released.len() < MAX_RELEASED {
                    self.released.insert(entry.key.clone(), publish.to_owned());
                }
            }
        }
    }

    async fn on_job(&mut self, job: Job) {
        match job {
            Job::Claim { claim, scope, name } => {
                let key = key(&scope, &name);
                self.publishes += 1;
                let publish = format!("{}/{}", self.node.member, self.publishes);
                if let Some(earlier) = self.pending.remove(&key) {
                    self.refuse(
                        earlier.claim,
                        format!("{name}: a later publish here replaced this one"),
                    );
                }
                match self.claim(&key, &publish, &scope, &name).await {
                    Ok(Written {
                        revision,
                        takes_over_from: Some(from),
                        ..
                    }) => {
                        info!(stream = %key, publish = %publish, "cluster: taking the stream over from node {from}; waiting until its publisher has ended");
                        let deadline = Instant::now() + leases::takeover_wait(self.node.ttl);
                        self.pending.insert(
                            key,
                            Pending {
                                claim,
                                publish,
                                revision,
                                scope,
                                name,
                                from,
                                deadline,
                            },
                        );
                    }
                    Ok(w) => {
                        self.grant(key, claim, publish, w.revision, w.sent, scope, name)
                            .await;
                    }
                    Err(why) => self.refuse(claim, why),
                }
            }
            Job::Unpublished { scope, name } => {
                let key = key(&scope, &name);
                // Jobs run in the hub's order: a later publish of the name
                // here is claimed after this delete.
                self.leases.end(&key);
                if let Some(owned) = self.owned.remove(&key) {
                    match timed(self.kv.delete_expect_revision(&key, Some(owned.revision))).await {
                        Ok(()) => info!(stream = %key, "cluster: stream unregistered"),
                        Err(e) => info!(stream = %key, "cluster: entry left as it is: {e}"),
                    }
                }
            }
            Job::PlayWaiting { scope, name } => {
                let key = key(&scope, &name);
                if self.owned.contains_key(&key) {
                    return;
                }
                match timed(self.kv.entry(&key)).await {
                    Ok(Some(entry)) => match live_entry(&entry) {
                        Some(holder) => self.pull(&scope, &name, &holder).await,
                        None => {
                            debug!(stream = %key, "cluster: a player waits; the name is not live")
                        }
                    },
                    Ok(None) => {
                        debug!(stream = %key, "cluster: a player waits; the name is not live")
                    }
                    Err(e) => warn!(stream = %key, "cluster: registry lookup failed: {e}"),
                }
            }
        }
    }

    /// Pulls `scope`/`name` from `holder` for the players here (nothing if
    /// it is this node). A pull of the name from a former holder is
    /// stopped first and given up to 2 s to leave: a pull does not
    /// publish over a stream that has a publisher.
    async fn pull(&self, scope: &ScopePath, name: &str, holder: &Entry) {
        if holder.node == self.node.id {
            return;
        }
        let Some(target) = pull_target(holder) else {
            warn!(node = %holder.node, "cluster: node advertises an unusable address {:?}", holder.rtmp);
            return;
        };
        let relays = self.shared.relays();
        let former = |relays: &crate::relay::service::RelayService| {
            relays
                .relays()
                .cluster_pulls()
                .into_iter()
                .filter(|r| &r.scope == scope && r.name == name && r.target != target)
                .collect::<Vec<_>>()
        };
        let leaving = former(relays);
        if !leaving.is_empty() {
            for relay in &leaving {
                relay.stop();
            }
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if former(relays).is_empty() {
                    break;
                }
            }
        }
        let idle = self
            .node
            .pull_idle
            .get(scope.app_name())
            .copied()
            .unwrap_or(Duration::from_secs(10));
        relays.pull_from(scope, name, target, idle);
    }

    /// A change seen on the watch.
    async fn on_watch(&mut self, entry: &kv::Entry) {
        if self.pending.contains_key(&entry.key) {
            return self.on_pending_watch(entry).await;
        }
        if let Some(publish) = self.released.get(&entry.key).cloned() {
            match live_entry(entry) {
                Some(h) if h.takes_over.as_deref() == Some(publish.as_str()) => {
                    self.confirm_release(entry, &h, &publish).await;
                }
                _ => {
                    self.released.remove(&entry.key);
                }
            }
        }
        if let Some(owned) = self.owned.get(&entry.key) {
            let holder = live_entry(entry);
            let taken = entry.revision > owned.revision
                && holder.as_ref().is_some_and(|h| h.publish != owned.publish);
            if !taken {
                return;
            }
            let (Some(owned), Some(holder)) = (self.owned.remove(&entry.key), holder) else {
                return;
            };
            self.end_local(
                &owned,
                &format!("was taken over by a publisher on node {}", holder.node),
            );
            self.confirm_release(entry, &holder, &owned.publish).await;
            return;
        }
        let Some(holder) = live_entry(entry) else {
            return;
        };
        if holder.node == self.node.id {
            return;
        }
        let Ok(scope) = ScopePath::resolve(&holder.scope, usize::MAX) else {
            return;
        };
        // Players here (waiting, or on a pull from a former holder) follow
        // the name to its node.
        let players = self.shared.with_hub(|hub| {
            hub.streams()
                .any(|s| s.scope == &scope && s.name == holder.name && s.players > 0)
        });
        if players {
            self.pull(&scope, &holder.name, &holder).await;
        }
    }

    fn end_local(&self, owned: &Owned, reason: &str) {
        self.leases.end(&key(&owned.scope, &owned.name));
        let now = self.shared.now();
        let ended = self
            .shared
            .with_hub(|hub| hub.end_publish(now, &owned.scope, &owned.name, reason));
        if ended {
            info!(stream = %format!("{}/{}", owned.scope, owned.name), "cluster: local publisher ended: {reason}");
        }
    }

    /// Rewrites this node's entries; stops pulls whose origin no longer
    /// holds the name.
    async fn refresh(&mut self) {
        let keys: Vec<String> = self.owned.keys().cloned().collect();
        for key in keys {
            let Some(owned) = self.owned.get(&key) else {
                continue;
            };
            let value = encode(&self.entry(&owned.publish, &owned.scope, &owned.name, None));
            let sent = Instant::now();
            match timed(self.kv.update(&key, value.clone(), owned.revision)).await {
                Ok(revision) => {
                    self.leases.renew(&key, sent);
                    if let Some(o) = self.owned.get_mut(&key) {
                        o.revision = revision;
                    }
                }
                Err(e) => self.refresh_failed(&key, &value, &e).await,
            }
        }
        for relay in self.shared.relays().relays().cluster_pulls() {
            let key = key(&relay.scope, &relay.name);
            let holder = match timed(self.kv.entry(&key)).await {
                Ok(entry) => entry.as_ref().and_then(live_entry),
                Err(_) => continue, // NATS unreachable: the pull decides by itself
            };
            let same = holder
                .as_ref()
                .and_then(pull_target)
                .is_some_and(|t| t == relay.target);
            if !same {
                info!(stream = %relay.stream(), "cluster: {} no longer holds the stream; pull stopped", relay.target);
                relay.stop();
                if let Some(holder) = holder {
                    self.pull(&relay.scope, &relay.name, &holder).await;
                }
            }
        }
    }

    /// A refresh was refused: the entry changed or is gone.
    async fn refresh_failed(&mut self, key: &str, value: &bytes::Bytes, why: &str) {
        let current = match timed(self.kv.entry(key)).await {
            Ok(current) => current,
            Err(e) => {
                warn!(stream = %key, "cluster: cannot refresh the registry entry: {why}; {e}");
                return;
            }
        };
        let Some(owned) = self.owned.get(key) else {
            return;
        };
        match current.as_ref().and_then(|e| live_entry(e).map(|h| (e, h))) {
            Some((entry, holder)) if holder.publish != owned.publish => {
                if let Some(owned) = self.owned.remove(key) {
                    let reason = format!("was taken over by a publisher on node {}", holder.node);
                    self.end_local(&owned, &reason);
                    self.confirm_release(entry, &holder, &owned.publish).await;
                }
            }
            Some(_) => {
                if let Some((o, entry)) = self.owned.get_mut(key).zip(current) {
                    o.revision = entry.revision;
                }
            }
            None => {
                // Expired (NATS was away longer than the TTL): take it
                // again if nobody did.
                let sent = Instant::now();
                match timed(self.kv.create(key, value.clone())).await {
                    Ok(revision) => {
                        self.leases.renew(key, sent);
                        if let Some(o) = self.owned.get_mut(key) {
                            o.revision = revision;
                        }
                    }
                    Err(e) => warn!(stream = %key, "cluster: registry entry lost: {e}"),
                }
            }
        }
    }
}

/// Starts the registry on `shared`'s hub and runs it until `stop`.
pub async fn run(shared: Arc<Shared>, kv: kv::Store, node: Node, mut stop: watch::Receiver<bool>) {
    let jobs = Arc::clone(shared.stream_jobs());
    let mut watch = match kv.watch_all().await {
        Ok(w) => Some(w),
        Err(e) => {
            warn!("cluster: cannot watch {BUCKET}: {e}; takeovers are seen at the next refresh");
            None
        }
    };
    let mut refresh = tokio::time::interval(node.ttl / 3);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending_check = tokio::time::interval(PENDING_CHECK);
    pending_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let leases = Arc::new(Leases::default());
    let lease_watch = tokio::spawn(leases::watch(
        Arc::clone(&shared),
        Arc::clone(&leases),
        node.ttl,
    ));
    let mut registry = Registry {
        shared,
        kv,
        node,
        owned: BTreeMap::new(),
        pending: BTreeMap::new(),
        released: BTreeMap::new(),
        leases,
        publishes: 0,
    };
    loop {
        tokio::select! {
            () = crate::server::stopped(&mut stop) => break,
            () = jobs.wake.wait() => {
                for job in jobs.take() {
                    registry.on_job(job).await;
                }
            }
            _ = refresh.tick() => registry.refresh().await,
            _ = pending_check.tick(), if !registry.pending.is_empty() => registry.expire_pending().await,
            next = async {
                match watch.as_mut() {
                    Some(w) => w.next().await,
                    None => std::future::pending().await,
                }
            } => match next {
                Some(Ok(entry)) => registry.on_watch(&entry).await,
                Some(Err(e)) => warn!("cluster: registry watch: {e}"),
                None => {
                    watch = registry.kv.watch_all().await.ok();
                }
            },
        }
    }
    lease_watch.abort();
    // Leaving: this node's names are free at once rather than after the TTL.
    for (key, pending) in std::mem::take(&mut registry.pending) {
        let _ = timed(
            registry
                .kv
                .delete_expect_revision(&key, Some(pending.revision)),
        )
        .await;
    }
    for (key, owned) in std::mem::take(&mut registry.owned) {
        let _ = timed(
            registry
                .kv
                .delete_expect_revision(&key, Some(owned.revision)),
        )
        .await;
    }
}

/// Turns the queue on and the hub's claims; call before the listeners open.
pub fn enable(shared: &Shared) {
    shared.stream_jobs().enable();
    shared.with_hub(|hub| hub.require_publish_claims(&[crate::relay::PROTOCOL]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_escaped_per_segment() {
        let scope = ScopePath::resolve("live/room.1", 4).unwrap();
        assert_eq!(key(&scope, "cam"), "live.room=2E1.cam");
        assert_eq!(
            key(&ScopePath::app("live").unwrap(), "a=b c"),
            "live.a=3Db=20c"
        );
        assert_ne!(
            key(&ScopePath::resolve("live/a", 4).unwrap(), "b"),
            key(&ScopePath::app("live").unwrap(), "a.b")
        );
    }

    #[test]
    fn pull_targets_come_from_the_entry() {
        let entry = Entry {
            node: "n1".into(),
            rtmp: "[::1]:1936".into(),
            publish: "p".into(),
            scope: "live/room".into(),
            name: "cam".into(),
            takes_over: None,
        };
        let target = pull_target(&entry).unwrap();
        assert_eq!((target.host.as_str(), target.port), ("::1", 1936));
        assert_eq!((target.app.as_str(), target.name), ("live/room", None));
        let bad = Entry {
            rtmp: "nohost".into(),
            ..entry
        };
        assert!(pull_target(&bad).is_none());
    }
}
