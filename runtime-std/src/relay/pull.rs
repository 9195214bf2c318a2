//! Pull: a stream played from an origin and published here, shared by
//! every local player of that name.
//!
//! A live play of a stream that is not published here, in an app with
//! `pull`, starts one pull of that name (later plays join the same live
//! stream as players of any local stream). Each connection goes: connect,
//! handshake, `connect`, `createStream`, `play`; once the origin answers
//! `NetStream.Play.Start` the relay publishes the stream into the hub
//! (protocol [`super::PROTOCOL`]) and hands it every media message the
//! origin sends. Local players then see it as any live stream: metadata,
//! sequence headers, a keyframe first.
//!
//! - A local publisher wins: the relay does not publish over one, and a
//!   local publisher that takes the name over (`publish_conflict =
//!   "replace"`, the default) ends the pull.
//! - It stops once the stream has had no local player for `idle`
//!   (`pull_idle_secs`); the check and the unpublish happen under the hub's
//!   lock, so a player arriving at that moment starts a new pull.
//! - After a failure it reconnects with [`Backoff`] delays while players
//!   wait; they get `UnpublishNotify` when the origin goes and
//!   `PublishNotify` when it is back.

use super::backoff::{Backoff, Jitter};
use super::{Connector, Host, Relay, RelayError, Relays, Settings, State};
use bytes::Bytes;
use std::time::Duration;
use tern_core::hub::{ConnId, Delivery, Hub, Request};
use tern_core::rtmp::handshake::RANDOM_LEN;
use tern_core::rtmp::{ClientConfig, ClientConnection, ClientEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

/// How often a pull checks whether it still has players.
const IDLE_CHECK: Duration = Duration::from_millis(500);

/// Local players of the pulled stream.
fn players(hub: &Hub, relay: &Relay) -> usize {
    hub.streams()
        .find(|s| s.scope == &relay.scope && s.name == relay.name)
        .map_or(0, |s| s.players)
}

/// Runs `relay` (a pull) until it has had no player for `idle`, a local
/// publisher took the name, or it is stopped. It removes itself from
/// `relays` when it decides to stop for want of players (under the hub's
/// lock, see the module docs); the caller removes it in the other cases.
pub async fn run<H: Host, C: Connector>(
    host: &H,
    connector: &C,
    relays: &Relays,
    relay: &Relay,
    settings: &Settings,
    idle: Duration,
    seed: u64,
) {
    let mut stop = relay.stop_signal();
    let mut backoff = Backoff::new();
    let mut jitter = Jitter::new(seed ^ relay.id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut idle_since: Option<Instant> = None;
    let mut first = true;
    loop {
        if *stop.borrow() {
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
            relays,
            relay,
            settings,
            idle,
            &mut idle_since,
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
        let wake = Instant::now() + delay;
        // Players may leave while the origin is away: keep checking.
        let done = loop {
            tokio::select! {
                () = sleep_until(wake) => break false,
                _ = stop.wait_for(|s| *s) => break true,
                () = tokio::time::sleep(IDLE_CHECK) => {
                    if idle_over(host, relays, relay, None, idle, &mut idle_since) {
                        break true;
                    }
                }
            }
        };
        if done {
            break;
        }
    }
    relay.set_state(State::Stopped, None);
}

/// True (and the relay unpublished and forgotten, under the hub's lock)
/// when the stream has had no player for `idle`.
fn idle_over<H: Host>(
    host: &H,
    relays: &Relays,
    relay: &Relay,
    publishing: Option<ConnId>,
    idle: Duration,
    idle_since: &mut Option<Instant>,
) -> bool {
    let now = host.now();
    let at = Instant::now();
    host.with_hub(|hub| {
        if players(hub, relay) > 0 {
            *idle_since = None;
            return false;
        }
        let since = *idle_since.get_or_insert(at);
        if at.duration_since(since) < idle {
            return false;
        }
        relays.remove(relay);
        if let Some(id) = publishing {
            hub.handle(now, id, Request::Disconnect);
        }
        true
    })
}

/// One connection to the origin; `Ok` when the relay is done.
#[allow(clippy::too_many_arguments)]
async fn once<H: Host, C: Connector>(
    host: &H,
    connector: &C,
    relays: &Relays,
    relay: &Relay,
    settings: &Settings,
    idle: Duration,
    idle_since: &mut Option<Instant>,
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
    config.limits = settings.limits.clone();
    let mut random = [0u8; RANDOM_LEN];
    for chunk in random.chunks_mut(8) {
        let bytes = jitter.next_u64().to_le_bytes();
        chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or(&bytes));
    }
    let mut client = ClientConnection::new(config, host.now(), &random);
    client.create_stream().map_err(RelayError::Protocol)?;
    // The relay's hub connection while it publishes here.
    let mut publishing: Option<(ConnId, std::sync::Arc<crate::direct_write::Peer>)> = None;
    let mut out = Bytes::new();
    let mut last_progress = Instant::now();
    let mut buf = vec![0u8; 16 * 1024];
    let mut requests = Vec::new();
    let mut phase = "the RTMP handshake";
    let mut check = tokio::time::interval(IDLE_CHECK);
    // An origin that vanished without closing (a partition, a crash)
    // leaves a pull with nothing to write: silence is how it shows.
    let mut last_read = Instant::now();
    let result: Result<(), RelayError> = 'session: loop {
        if out.is_empty()
            && let Some(bytes) = client.poll_transmit()
        {
            out = bytes;
            last_progress = Instant::now();
        }
        let peer = publishing.as_ref().map(|(_, p)| std::sync::Arc::clone(p));
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
                last_read = Instant::now();
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
                            phase = "play";
                            let name = target.stream_name(&relay.name);
                            if let Err(e) = client.play(stream_id, &name, -1.0) {
                                break 'session Err(RelayError::Protocol(e));
                            }
                        }
                        ClientEvent::Status { code, .. }
                            if code == "NetStream.Play.Start" && publishing.is_none() =>
                        {
                            let taken = host.with_hub(|hub| {
                                hub.publisher_of(&relay.scope, &relay.name).is_some()
                            });
                            if taken {
                                // A local publisher wins over the pull.
                                break 'session Ok(());
                            }
                            let (id, peer) = host.register();
                            super::join(
                                host,
                                relay,
                                id,
                                Request::Publish { stream: 1, name: relay.name.clone() },
                            );
                            publishing = Some((id, peer));
                            *got_through = true;
                            relay.set_state(State::Live, None);
                        }
                        ClientEvent::Media { kind, timestamp, payload, .. } if publishing.is_some() => {
                            requests.push(Request::Media { stream: 1, kind, timestamp, payload });
                        }
                        _ => {}
                    }
                }
                if let Some((id, _)) = &publishing
                    && !requests.is_empty()
                {
                    let now = host.now();
                    host.with_hub(|hub| {
                        for request in requests.drain(..) {
                            hub.handle(now, *id, request);
                        }
                    });
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
            () = sleep_until(setup_deadline), if publishing.is_none() => {
                break Err(RelayError::SetupTimeout(phase));
            }
            () = sleep_until(last_read + settings.write_stall), if publishing.is_some() => {
                break Err(RelayError::Silent(settings.write_stall));
            }
            _ = check.tick() => {
                let id = publishing.as_ref().map(|(id, _)| *id);
                if idle_over(host, relays, relay, id, idle, idle_since) {
                    break Ok(());
                }
            }
            () = async { match peer { Some(p) => p.wakeup.wait().await, None => std::future::pending().await } } => {
                // What the hub tells its publisher: a takeover by a local
                // publisher ends the pull.
                let Some((id, _)) = &publishing else { continue };
                let id = *id;
                let ended = host.with_hub(|hub| {
                    let mut ended = false;
                    while let Some(d) = hub.poll_delivery(id) {
                        match d {
                            Delivery::Close { .. } | Delivery::Rejected { .. } => ended = true,
                            Delivery::Status { code, .. }
                                if code.starts_with("NetStream.Publish.")
                                    && code != "NetStream.Publish.Start" =>
                            {
                                ended = true;
                            }
                            _ => {}
                        }
                    }
                    ended
                });
                if ended {
                    break Ok(());
                }
            }
        }
    };
    if let Some((id, _)) = publishing {
        host.unregister(id);
    }
    if result.is_ok() {
        let _ = tokio::time::timeout(Duration::from_millis(500), wr.shutdown()).await;
    }
    result
}
