//! Push: one local stream published to one target, for as long as the
//! stream is live, reconnecting after failures.
//!
//! Each connection to the target goes: connect (TLS for `rtmps`), RTMP
//! handshake, `connect`, `createStream`, `publish`; once the target
//! answers `NetStream.Publish.Start` the relay joins the local stream as
//! a server-side player ([`super::PROTOCOL`], FLV raw framing, like the
//! recorder) and sends what the hub gives it: metadata (as
//! `@setDataFrame`), the sequence headers, then media from a keyframe
//! (the hub's fast start). Every connection is a fresh play, so a target
//! that comes back, or is added while the stream is live, starts on a
//! keyframe; its timestamps start near 0.
//!
//! The relay never holds the publisher back: it takes deliveries from the
//! hub only while what it has not written yet is below [`LOW_WATER`], so a
//! slow or stalled target leaves them in the relay's outbox, where the
//! slow-player drop policy applies. A write that makes no progress for
//! `write_stall` ends the connection; so does no `Publish.Start` within
//! `setup_timeout` (a target that accepts TCP and never answers). Between
//! connections the relay holds no hub connection at all, and waits
//! [`Backoff`] delays; it stops when the local stream is no longer live or
//! its stop switch flips.

use super::backoff::{Backoff, Jitter};
use super::{Connector, Host, Relay, RelayError, Settings, State};
use crate::direct_write::Peer;
use bytes::Bytes;
use std::sync::Arc;
use tern_core::flv::Framing;
use tern_core::flv::fanout::{media_encoder, rebase};
use tern_core::flv::tag::{FlvTagView, TAG_HEADER_LEN};
use tern_core::hub::{ConnId, Delivery, Level, MediaDelivery, MediaKind, Request};
use tern_core::rtmp::handshake::RANDOM_LEN;
use tern_core::rtmp::{ClientConfig, ClientConnection, ClientEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

/// The relay takes deliveries from the hub only while fewer bytes than
/// this wait to be written to the target.
pub const LOW_WATER: usize = 64 * 1024;

/// How long a relay that stops still tries to say goodbye (`deleteStream`).
const GOODBYE: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs `relay` (a push) until the local stream ends or the relay is
/// stopped; its state ends [`State::Stopped`]. `seed` varies the jitter
/// and handshake bytes.
pub async fn run<H: Host, C: Connector>(
    host: &H,
    connector: &C,
    relay: &Relay,
    settings: &Settings,
    seed: u64,
) {
    let mut stop = relay.stop_signal();
    let mut backoff = Backoff::new();
    let mut jitter = Jitter::new(seed ^ relay.id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut first = true;
    loop {
        if *stop.borrow() || !source_live(host, relay) {
            break;
        }
        if !first {
            relay.reconnected();
        }
        first = false;
        relay.set_state(State::Connecting, None);
        let mut got_through = false;
        let attempt = once(
            host,
            connector,
            relay,
            settings,
            &mut stop,
            &mut jitter,
            &mut got_through,
        )
        .await;
        let Err(e) = attempt else { break };
        if got_through {
            backoff.reset();
        }
        let delay = backoff.next(jitter.next_u64());
        relay.set_state(State::Waiting, Some(&e));
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    relay.set_state(State::Stopped, None);
}

fn source_live<H: Host>(host: &H, relay: &Relay) -> bool {
    host.with_hub(|hub| hub.publisher_of(&relay.scope, &relay.name).is_some())
}

/// The relay's hub connection while it plays the local stream.
struct Subscription {
    id: ConnId,
    peer: Arc<Peer>,
    /// The message stream the target gave us.
    stream: u32,
    /// The local timestamp the target's 0 stands for.
    base: Option<u32>,
}

/// Waits until the hub has deliveries for `peer` (at once if `more`).
async fn ready(peer: Option<Arc<Peer>>, more: bool) {
    match peer {
        Some(_) if more => {}
        Some(peer) => peer.wakeup.wait().await,
        None => std::future::pending().await,
    }
}

/// One connection to the target. `Ok` when the relay is done (stopped, or
/// the local stream ended), `Err` when the connection failed; `got_through`
/// says whether the target had accepted the publish.
#[allow(clippy::too_many_arguments)]
async fn once<H: Host, C: Connector>(
    host: &H,
    connector: &C,
    relay: &Relay,
    settings: &Settings,
    stop: &mut watch::Receiver<bool>,
    jitter: &mut Jitter,
    got_through: &mut bool,
) -> Result<(), RelayError> {
    let target = &relay.target;
    let setup_deadline = Instant::now() + settings.setup_timeout;
    let stream = tokio::select! {
        r = connector.connect(target) => r?,
        () = sleep_until(setup_deadline) => return Err(RelayError::SetupTimeout("connect")),
        _ = stop.wait_for(|s| *s) => return Ok(()),
    };
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut config = ClientConfig::new(target.connect_app(), target.tc_url());
    config.flash_ver = "FMLE/3.0 (compatible; tern)".to_owned();
    config.limits = settings.limits.clone();
    let mut random = [0u8; RANDOM_LEN];
    for chunk in random.chunks_mut(8) {
        let bytes = jitter.next_u64().to_le_bytes();
        chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or(&bytes));
    }
    let mut client = ClientConnection::new(config, host.now(), &random);
    client.create_stream().map_err(RelayError::Protocol)?;
    let mut sub: Option<Subscription> = None;
    let mut target_stream: Option<u32> = None;
    let mut out = Bytes::new();
    let mut last_progress = Instant::now();
    let mut more = false;
    let mut buf = vec![0u8; 16 * 1024];
    let mut deliveries = Vec::new();
    let mut phase = "the RTMP handshake";
    let result: Result<(), RelayError> = 'session: loop {
        if out.is_empty()
            && let Some(bytes) = client.poll_transmit()
        {
            out = bytes;
            last_progress = Instant::now();
        }
        let room = sub.is_some() && out.len() + client.pending_bytes() < LOW_WATER;
        let peer = sub.as_ref().map(|s| Arc::clone(&s.peer));
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break Ok(()),
            r = rd.read(&mut buf) => {
                let n = match r {
                    Ok(0) => break Err(RelayError::Closed),
                    Ok(n) => n,
                    Err(e) => break Err(RelayError::Io(e.to_string())),
                };
                relay.read(n);
                if let Err(e) = client.handle_input(host.now(), buf.get(..n).unwrap_or_default()) {
                    break Err(RelayError::Protocol(e));
                }
                while let Some(event) = client.poll_event() {
                    let event = match super::setup_event(event, &mut phase) {
                        Ok(Some(event)) => event,
                        Ok(None) => continue,
                        Err(e) => break 'session Err(e),
                    };
                    match event {
                        ClientEvent::StreamCreated { stream_id, .. } => {
                            phase = "publish";
                            target_stream = Some(stream_id);
                            let name = target.stream_name(&relay.name);
                            if let Err(e) = client.publish(stream_id, &name) {
                                break 'session Err(RelayError::Protocol(e));
                            }
                        }
                        ClientEvent::Status { code, stream_id, .. }
                            if code == "NetStream.Publish.Start" && sub.is_none() =>
                        {
                            let (id, peer) = host.register();
                            super::join(
                                host,
                                relay,
                                id,
                                Request::Play {
                                    stream: 1,
                                    name: relay.name.clone(),
                                    start: -1.0,
                                    encoder: media_encoder(Framing::Raw),
                                },
                            );
                            sub = Some(Subscription { id, peer, stream: stream_id, base: None });
                            *got_through = true;
                            relay.set_state(State::Live, None);
                        }
                        _ => {}
                    }
                }
            }
            w = wr.write(&out), if !out.is_empty() => {
                if let Err(e) = super::wrote(w, relay, &mut out, &mut last_progress) {
                    break Err(e);
                }
            }
            () = sleep_until(last_progress + settings.write_stall), if !out.is_empty() => {
                break Err(RelayError::Stalled(settings.write_stall));
            }
            () = sleep_until(setup_deadline), if sub.is_none() => {
                break Err(RelayError::SetupTimeout(phase));
            }
            () = ready(peer, more), if room => {
                let Some(s) = sub.as_mut() else { continue };
                let budget = LOW_WATER.saturating_sub(out.len() + client.pending_bytes());
                let id = s.id;
                more = host.with_hub(|hub| {
                    let mut taken = 0;
                    while taken < budget {
                        match hub.poll_delivery(id) {
                            Some(d) => {
                                taken += d.weight();
                                deliveries.push(d);
                            }
                            None => return false,
                        }
                    }
                    true
                });
                for delivery in deliveries.drain(..) {
                    match delivery {
                        Delivery::Media(media) => {
                            if let Err(e) = forward(&mut client, s, &media) {
                                break 'session Err(RelayError::Protocol(e));
                            }
                        }
                        Delivery::StreamEof { .. } | Delivery::Rejected { .. } => {
                            break 'session Ok(());
                        }
                        // Given up as a slow player (or the server is
                        // closing): start over if the stream is still live.
                        Delivery::Close { reason } => break 'session Err(RelayError::Dropped(reason)),
                        Delivery::Status { level: Level::Error, .. } => break 'session Ok(()),
                        _ => {}
                    }
                }
            }
        }
    };
    if let Some(s) = &sub {
        host.unregister(s.id);
    }
    if result.is_ok()
        && let Some(stream) = target_stream
        && client.delete_stream(stream).is_ok()
    {
        // Tell the target the stream ended rather than just vanishing.
        let goodbye = async {
            if !out.is_empty() {
                wr.write_all(&out).await?;
            }
            while let Some(bytes) = client.poll_transmit() {
                wr.write_all(&bytes).await?;
            }
            wr.shutdown().await
        };
        let _ = tokio::time::timeout(GOODBYE, goodbye).await;
    }
    result
}

/// Sends one relayed message to the target.
fn forward(
    client: &mut ClientConnection,
    sub: &mut Subscription,
    media: &MediaDelivery,
) -> Result<(), tern_core::rtmp::RtmpError> {
    let Ok((view, _)) = FlvTagView::parse(&media.encoded) else {
        // The hub's own FLV encoding; never malformed.
        return Ok(());
    };
    let end = TAG_HEADER_LEN + view.body.len();
    let body = media
        .encoded
        .slice(TAG_HEADER_LEN.min(end)..end.min(media.encoded.len()));
    let base = *sub.base.get_or_insert(media.timestamp);
    let timestamp = rebase(media.timestamp, base);
    let payload = match media.kind {
        MediaKind::Data => with_set_data_frame(body),
        _ => body,
    };
    client.send_media(sub.stream, media.kind, timestamp, payload)
}

/// `onMetaData …` as an encoder sends it (`@setDataFrame onMetaData …`),
/// so the target keeps it as the stream's metadata; other data as is.
fn with_set_data_frame(body: Bytes) -> Bytes {
    const ON_METADATA: &[u8] = b"\x02\x00\x0aonMetaData";
    const SET_DATA_FRAME: &[u8] = b"\x02\x00\x0d@setDataFrame";
    if !body.starts_with(ON_METADATA) {
        return body;
    }
    let mut out = Vec::with_capacity(SET_DATA_FRAME.len() + body.len());
    out.extend_from_slice(SET_DATA_FRAME);
    out.extend_from_slice(&body);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_goes_out_as_an_encoder_sends_it() {
        let body = Bytes::from_static(b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00\x00\x00\x09");
        let out = with_set_data_frame(body.clone());
        assert!(out.starts_with(b"\x02\x00\x0d@setDataFrame\x02\x00\x0aonMetaData"));
        assert_eq!(out.len(), body.len() + 16);
        let other = Bytes::from_static(b"\x02\x00\x06onCue!");
        assert_eq!(with_set_data_frame(other.clone()), other);
    }
}
