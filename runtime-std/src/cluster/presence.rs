//! Rooms across nodes: each node's presence on core NATS
//! (docs/cluster.md, "Rooms across nodes").
//!
//! Every [`PRESENCE_EVERY`] a node publishes on [`SUBJECT`] its id and
//! its rooms with connections (`Hub::local_rooms`), and hands what the
//! others publish to its hub (`Hub::set_remote_rooms`). A node not heard
//! from for [`PRESENCE_TTL`] is taken as gone (its rooms count zero); a
//! node that stops says so at once with an empty list.

use crate::server::Shared;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tern_core::scope_path::ScopePath;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, warn};

/// Where presence messages go (core NATS: nothing is stored).
pub const SUBJECT: &str = "tern.presence";
/// How often a node says where it is.
pub const PRESENCE_EVERY: Duration = Duration::from_secs(1);
/// Silence after which a node's rooms no longer count.
pub const PRESENCE_TTL: Duration = Duration::from_secs(3);
/// Scope depth accepted in presence messages (deeper rooms are skipped).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Serialize, Deserialize)]
struct Presence {
    node: String,
    /// Room path (`/app/room`) and connections.
    rooms: Vec<(String, u64)>,
}

/// Publishes this node's presence and applies the others' until `stop`.
pub async fn run(
    shared: Arc<Shared>,
    client: async_nats::Client,
    node: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut incoming = match client.subscribe(SUBJECT).await {
        Ok(s) => s,
        Err(e) => {
            warn!("cluster: presence not available ({e}); room counts stay local");
            return;
        }
    };
    let mut seen: BTreeMap<String, Instant> = BTreeMap::new();
    let mut tick = tokio::time::interval(PRESENCE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = crate::server::stopped(&mut stop) => break,
            _ = tick.tick() => {
                let rooms = shared.with_hub(|hub| hub.local_rooms());
                publish(&client, &node, rooms.iter().map(|(p, n)| (p.to_string(), *n)).collect()).await;
                let now = Instant::now();
                let gone: Vec<String> = seen
                    .iter()
                    .filter(|(_, at)| now.duration_since(**at) > PRESENCE_TTL)
                    .map(|(n, _)| n.clone())
                    .collect();
                for other in gone {
                    seen.remove(&other);
                    debug!(node = %other, "cluster: presence expired");
                    let at = shared.now();
                    shared.with_hub(|hub| hub.set_remote_rooms(at, &other, Vec::new()));
                }
            }
            Some(msg) = futures_util::StreamExt::next(&mut incoming) => {
                let Ok(p) = serde_json::from_slice::<Presence>(&msg.payload) else {
                    warn!("cluster: unreadable presence message skipped");
                    continue;
                };
                if p.node == node {
                    continue;
                }
                let rooms: Vec<(ScopePath, u64)> = p
                    .rooms
                    .iter()
                    .filter_map(|(path, n)| {
                        ScopePath::resolve(path.trim_start_matches('/'), MAX_DEPTH)
                            .ok()
                            .map(|p| (p, *n))
                    })
                    .collect();
                if rooms.is_empty() {
                    seen.remove(&p.node);
                } else {
                    seen.insert(p.node.clone(), Instant::now());
                }
                let at = shared.now();
                shared.with_hub(|hub| hub.set_remote_rooms(at, &p.node, rooms));
            }
        }
    }
    // Leaving: the others forget this node's rooms now, not after the TTL.
    publish(&client, &node, Vec::new()).await;
    let _ = client.flush().await;
}

async fn publish(client: &async_nats::Client, node: &str, rooms: Vec<(String, u64)>) {
    let p = Presence {
        node: node.to_owned(),
        rooms,
    };
    match serde_json::to_vec(&p) {
        Ok(payload) => {
            if let Err(e) = client.publish(SUBJECT, payload.into()).await {
                debug!("cluster: presence not sent: {e}");
            }
        }
        Err(e) => warn!("cluster: presence not encoded: {e}"),
    }
}
