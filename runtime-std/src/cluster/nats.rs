//! The NATS side of the bus: the connection (credentials, TLS), the
//! JetStream stream that sequences shared-object writes, and the ordered
//! consumer every node reads it with.

use super::ClusterError;
use crate::config::ClusterConfig;
use async_nats::jetstream::{self, consumer, stream};
use std::time::Duration;
use tokio::sync::mpsc;

/// The stream holding every shared-object message of the cluster.
pub const STREAM: &str = "TERN_SO";
/// Its subjects (`tern_core::cluster::message::so_subject`).
pub const SUBJECTS: &str = "tern.so.>";
/// JetStream drops a proposal whose `Nats-Msg-Id` it saw this recently.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long the first connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected node: the client, its JetStream context, the stream, and
/// the connection's ups and downs (`true`: connected).
pub struct Link {
    pub js: jetstream::Context,
    pub stream: stream::Stream,
    pub states: mpsc::UnboundedReceiver<bool>,
}

/// Connects to `config.nats_url` and makes sure the stream exists (file
/// storage: persistent objects survive every tern node).
pub async fn connect(config: &ClusterConfig, node_id: &str) -> Result<Link, ClusterError> {
    let (tx, states) = mpsc::unbounded_channel();
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("tern {node_id}"))
        .connection_timeout(CONNECT_TIMEOUT)
        .max_reconnects(None)
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        let _ = tx.send(true);
                    }
                    async_nats::Event::Disconnected => {
                        let _ = tx.send(false);
                    }
                    other => tracing::info!("cluster: NATS {other}"),
                }
            }
        });
    if let Some(creds) = &config.nats_creds {
        options = options
            .credentials_file(creds)
            .await
            .map_err(|e| ClusterError::Setup(format!("nats_creds {}: {e}", creds.display())))?;
    }
    if let Some(ca) = &config.nats_tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    let servers: Vec<async_nats::ServerAddr> = config
        .nats_url
        .split(',')
        .map(|u| u.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|e| ClusterError::Setup(format!("nats_url: {e}")))?;
    let client = options
        .connect(servers)
        .await
        .map_err(|e| ClusterError::Setup(format!("cannot connect to {}: {e}", config.nats_url)))?;
    let js = jetstream::new(client);
    let stream = js
        .get_or_create_stream(stream::Config {
            name: STREAM.to_owned(),
            subjects: vec![SUBJECTS.to_owned()],
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await
        .map_err(|e| ClusterError::Setup(format!("JetStream stream {STREAM}: {e}")))?;
    Ok(Link { js, stream, states })
}

/// Every message of the stream from sequence `from`, in order.
pub async fn read_from(
    stream: &stream::Stream,
    from: u64,
) -> Result<consumer::pull::Ordered, ClusterError> {
    let deliver_policy = if from <= 1 {
        consumer::DeliverPolicy::All
    } else {
        consumer::DeliverPolicy::ByStartSequence {
            start_sequence: from,
        }
    };
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: SUBJECTS.to_owned(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| ClusterError::Setup(format!("JetStream consumer: {e}")))?;
    consumer
        .messages()
        .await
        .map_err(|e| ClusterError::Setup(format!("JetStream consumer: {e}")))
}
