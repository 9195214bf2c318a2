//! `[cluster]`: this node's link to the others (docs/cluster.md).
//!
//! At start ([`start`]): connect to NATS, make sure the JetStream stream
//! exists, join the hub to the cluster, replay the stream into it (before
//! the listeners accept anyone), then hand the rest to one task that moves
//! the hub's proposals to JetStream and JetStream's messages, in sequence
//! order, back to the hub (the call order of `tern_core::cluster`).

pub mod leases;
mod nats;
pub mod presence;
pub mod streams;

use crate::config::Config;
use crate::server::Shared;
use async_nats::jetstream::message::PublishMessage;
use futures_util::StreamExt;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tern_core::cluster::{Bus, pump};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// How long the replay at start may take before the node gives up.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the node could not join its cluster.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClusterError {
    /// Connecting, creating the stream or the consumer failed.
    Setup(String),
    /// The replay at start failed or took too long.
    Replay(String),
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Setup(why) => write!(f, "cluster: {why}"),
            ClusterError::Replay(why) => write!(f, "cluster: replay at start: {why}"),
        }
    }
}

impl std::error::Error for ClusterError {}

/// This node's id: `[cluster] node_id`, else the host name and RTMP port.
pub fn node_id(config: &Config) -> String {
    if let Some(id) = config.cluster.as_ref().and_then(|c| c.node_id.clone()) {
        return id;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect::<String>();
    let host = if host.is_empty() {
        "tern".to_owned()
    } else {
        host
    };
    format!("{host}-{}", config.server.rtmp_bind.port())
}

/// A sequencer reached some other way than NATS: the simulator's
/// in-memory one (`tern-sim`), given to [`crate::serve_on_with_bus`].
/// `[cluster]` is then not needed and not read.
pub struct ExternalBus {
    /// The node's side of the sequencer ([`tern_core::cluster`]'s call
    /// order). Its first event should say whether the link is up; the hub
    /// refuses writes until it hears `Online(true)`.
    pub bus: Box<dyn Bus + Send>,
    /// Notified by the sequencer whenever `bus` may have news (a message
    /// appended, the link cut or restored).
    pub news: Arc<tokio::sync::Notify>,
    /// This process's member id: unique per start (see
    /// [`tern_core::hub::Hub::join_cluster`]).
    pub member: String,
}

impl fmt::Debug for ExternalBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalBus")
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

/// Joins the hub to an [`ExternalBus`], replays what the bus already has
/// (before the listeners accept anyone, as with NATS), and returns the
/// task that pumps proposals and events until `stop`.
pub fn start_external(
    external: ExternalBus,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let ExternalBus {
        mut bus,
        news,
        member,
    } = external;
    shared.with_hub(|hub| hub.join_cluster(member.clone()));
    let now = shared.now();
    let replayed = shared.with_hub(|hub| pump(now, hub, bus.as_mut()));
    info!(member = %member, replayed, "cluster: joined (external bus)");
    let wakeup = shared.cluster_wakeup();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = crate::server::stopped(&mut stop) => break,
                () = wakeup.wait() => {}
                () = news.notified() => {}
            }
            let now = shared.now();
            shared.with_hub(|hub| pump(now, hub, bus.as_mut()));
        }
    })
}

/// Joins the cluster and replays it into the hub; returns the task that
/// keeps the node in step until `stop`. `None` without `[cluster]`.
pub async fn start(
    config: &Config,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> Result<Option<JoinHandle<()>>, ClusterError> {
    let Some(cluster) = &config.cluster else {
        return Ok(None);
    };
    let node = node_id(config);
    let link = nats::connect(cluster, &node).await?;
    let mut messages = nats::read_from(&link.stream, 1).await?;
    let mut info = link.stream.clone();
    let last = info
        .info()
        .await
        .map_err(|e| ClusterError::Setup(format!("stream info: {e}")))?
        .state
        .last_sequence;
    // Unique per process start: write ids start at 1 again after a
    // restart and must not collide in JetStream's duplicate window.
    let member = format!("{node}/{:016x}", incarnation());
    shared.with_hub(|hub| hub.join_cluster(member.clone()));
    let mut applied = 0u64;
    while shared.with_hub(|hub| hub.last_sequence()) < last {
        let next = tokio::time::timeout(REPLAY_TIMEOUT, messages.next())
            .await
            .map_err(|_| ClusterError::Replay(format!("no message within {REPLAY_TIMEOUT:?}")))?;
        match next {
            Some(Ok(msg)) => {
                apply(&shared, &msg);
                applied += 1;
            }
            Some(Err(e)) => warn!("cluster: reading the stream: {e}"),
            None => return Err(ClusterError::Replay("the consumer ended".to_owned())),
        }
    }
    shared.with_hub(|hub| hub.set_bus_online(true));
    let ttl = Duration::from_secs(cluster.stream_ttl_secs);
    let registry = streams::open(&link.js, ttl)
        .await
        .map_err(|e| ClusterError::Setup(format!("stream registry: {e}")))?;
    let streams_node = streams::Node {
        id: node.clone(),
        member: member.clone(),
        rtmp: cluster
            .advertise_rtmp
            .clone()
            .unwrap_or_else(|| config.server.rtmp_bind.to_string()),
        ttl,
        conflict: crate::server::hub_config(config, &tern_core::Limits::default()).publish_conflict,
        pull_idle: config
            .apps
            .iter()
            .map(|(name, app)| (name.clone(), Duration::from_secs(app.pull_idle_secs)))
            .collect(),
    };
    if cluster.advertise_rtmp.is_none() && config.server.rtmp_bind.ip().is_unspecified() {
        warn!(
            "cluster: [cluster] advertise_rtmp is not set and rtmp_bind is {}: other nodes cannot pull this node's streams",
            config.server.rtmp_bind
        );
    }
    streams::enable(&shared);
    info!(node = %node, member = %member, replayed = applied, last_sequence = last, "cluster: joined");
    let presence = tokio::spawn(presence::run(
        Arc::clone(&shared),
        link.js.client(),
        node.clone(),
        stop.clone(),
    ));
    let streams_task = tokio::spawn(streams::run(
        Arc::clone(&shared),
        registry,
        streams_node,
        stop.clone(),
    ));
    let so_task = tokio::spawn(run(shared, link, messages, stop));
    let task = tokio::spawn(async move {
        let _ = so_task.await;
        let _ = streams_task.await;
        let _ = presence.await;
    });
    Ok(Some(task))
}

fn incarnation() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 40)
}

fn apply(shared: &Shared, msg: &async_nats::jetstream::Message) {
    match msg.info() {
        Ok(info) => {
            let seq = info.stream_sequence;
            let now = shared.now();
            shared.with_hub(|hub| hub.apply_sequenced(now, seq, &msg.payload));
        }
        Err(e) => warn!("cluster: message without JetStream info skipped: {e}"),
    }
}

async fn run(
    shared: Arc<Shared>,
    mut link: nats::Link,
    mut messages: async_nats::jetstream::consumer::pull::Ordered,
    mut stop: watch::Receiver<bool>,
) {
    let wakeup = shared.cluster_wakeup();
    loop {
        tokio::select! {
            () = crate::server::stopped(&mut stop) => break,
            () = wakeup.wait() => publish(&shared, &link.js).await,
            next = messages.next() => match next {
                Some(Ok(msg)) => apply(&shared, &msg),
                // The ordered consumer recreates itself after errors.
                Some(Err(e)) => warn!("cluster: reading the stream: {e}"),
                None => {
                    warn!("cluster: the stream consumer ended; writes are refused from now on");
                    shared.with_hub(|hub| hub.set_bus_online(false));
                    break;
                }
            },
            Some(up) = link.states.recv() => {
                if !up {
                    warn!("cluster: lost NATS; shared-object writes are refused until it is back");
                    shared.with_hub(|hub| hub.set_bus_online(false));
                    continue;
                }
                // A restarted NATS server has forgotten the consumer: read
                // on from the next sequence this node has not applied.
                let next = shared.with_hub(|hub| hub.last_sequence()) + 1;
                match nats::read_from(&link.stream, next).await {
                    Ok(fresh) => {
                        messages = fresh;
                        info!(from = next, "cluster: connected to NATS; writes accepted");
                        shared.with_hub(|hub| hub.set_bus_online(true));
                    }
                    Err(e) => warn!("cluster: reconnected, but {e}; writes stay refused"),
                }
            }
        }
    }
}

/// Publishes every queued proposal, in order; each acknowledgement is
/// awaited on its own task so publishing never waits for one.
async fn publish(shared: &Arc<Shared>, js: &async_nats::jetstream::Context) {
    loop {
        let Some(p) = shared.with_hub(|hub| hub.poll_proposal()) else {
            return;
        };
        let message = PublishMessage::build()
            .payload(p.payload.into())
            .message_id(&p.id);
        let write = p.write;
        let fail = move |shared: &Shared, why: String| {
            let now = shared.now();
            shared.with_hub(|hub| hub.proposal_failed(now, write, &why));
        };
        match js.send_publish(p.subject, message).await {
            Ok(ack) => {
                let shared = Arc::clone(shared);
                tokio::spawn(async move {
                    if let Err(e) = ack.await {
                        fail(&shared, format!("not stored: {e}"));
                    }
                });
            }
            Err(e) => fail(shared, format!("publish failed: {e}")),
        }
    }
}
