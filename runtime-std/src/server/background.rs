//! The server's background tasks: hub timers, direct writes to parked
//! connections, and the recorders of apps that record.

use super::accept::stopped;
use super::state::Shared;
use crate::direct_write::Peer;
use crate::record::{self, RecordSettings};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tern_core::flv::Framing;
use tern_core::hub::Delivery;
use tern_core::hub::Request;
use tern_core::scope_path::ScopePath;
use tokio::sync::watch;
use tracing::{Instrument, info, warn};

/// How often the hub's timers (idle rooms, idle connections) are checked.
const HUB_TICK: std::time::Duration = std::time::Duration::from_millis(250);

/// Starts a recorder for each stream that begins publishing in an app
/// with `record` on, until `shutdown` flips (see [`crate::record`]).
pub async fn run_recordings(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => return,
            () = shared.recordings.wait() => {}
        }
        let (started, records) = {
            let mut cell = shared.lock();
            (
                std::mem::take(&mut cell.to_record),
                Arc::clone(&cell.records),
            )
        };
        for (scope, name) in started {
            let Some(settings) = records.get(scope.app_name()).cloned() else {
                continue;
            };
            let span = tracing::info_span!("record", scope = %scope, stream = %name);
            tokio::spawn(
                record_stream(Arc::clone(&shared), scope, name, settings).instrument(span),
            );
        }
    }
}

/// Plays `scope`/`name` as a server-side player and hands its tags to a
/// writer thread until the stream ends or the recording fails.
pub(super) async fn record_stream(
    shared: Arc<Shared>,
    scope: ScopePath,
    name: String,
    settings: RecordSettings,
) {
    let label = format!("{scope}/{name}");
    let Some(base) = record::stream_base(&settings.dir, &scope, &name) else {
        record::not_started(
            &label,
            "the stream name is not a valid file name (letters, digits, '_', '-', '.')",
        );
        shared.recordings_failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let done_shared = Arc::clone(&shared);
    let done_label = label.clone();
    let done_scope = scope.clone();
    let done_name = name.clone();
    let done_url = settings.on_done_url.clone();
    // The writer thread reports; the callback runs on the runtime.
    let runtime = tokio::runtime::Handle::current();
    let on_done = move |done: &record::FileDone| {
        record::file_done(&done_label, done);
        done_shared.recordings_done.fetch_add(1, Ordering::Relaxed);
        if let Some(url) = &done_url {
            let call = record::done_call(&done_scope, &done_name, &done_label, done, url);
            let _entered = runtime.enter();
            done_shared.hook_runner().start(call, None);
        }
    };
    let (tx, writer) = match record::start_writer(settings.clone(), base, label.clone(), on_done) {
        Ok(started) => started,
        Err(e) => {
            record::not_started(&label, &format!("no writer thread: {e}"));
            shared.recordings_failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let (id, peer) = shared.register();
    let now = shared.now();
    shared.with_hub(|hub| {
        hub.handle(
            now,
            id,
            Request::Connect(tern_core::hub::ConnectRequest::server_side(
                record::PROTOCOL,
                scope.as_str(),
            )),
        );
        hub.handle(
            now,
            id,
            Request::Play {
                stream: 1,
                name: name.clone(),
                start: -1.0,
                encoder: tern_core::flv::fanout::media_encoder(Framing::Raw),
            },
        );
    });
    let mut deliveries = Vec::new();
    let mut stop: Option<String> = None;
    while stop.is_none() {
        peer.wakeup.wait().await;
        shared.with_hub(|hub| {
            while let Some(d) = hub.poll_delivery(id) {
                deliveries.push(d);
            }
        });
        for delivery in deliveries.drain(..) {
            match delivery {
                Delivery::Media(media) if settings.keeps(media.kind, media.priority) => {
                    if let Err(why) = record::send(&tx, record::Tag::of(&media)) {
                        stop.get_or_insert_with(|| why.to_owned());
                    }
                }
                Delivery::StreamEof { .. } => {
                    stop.get_or_insert_with(String::new);
                }
                Delivery::Close { reason } => {
                    stop.get_or_insert(reason);
                }
                Delivery::Rejected { description, .. } => {
                    stop.get_or_insert(description);
                }
                Delivery::Status {
                    level: tern_core::hub::Level::Error,
                    description,
                    ..
                } => {
                    stop.get_or_insert(description);
                }
                _ => {}
            }
        }
    }
    shared.unregister(id);
    drop(tx);
    let finished = tokio::task::spawn_blocking(move || writer.join()).await;
    let failure = match finished {
        Ok(Ok(finished)) => finished.failure,
        _ => Some("the writer thread panicked".to_owned()),
    };
    let queue_full = stop.as_deref().is_some_and(|s| s.contains("queue full"));
    if let Some(why) = failure {
        shared.recordings_failed.fetch_add(1, Ordering::Relaxed);
        warn!("recording of {label} failed: {why}");
    } else if queue_full {
        shared.recordings_failed.fetch_add(1, Ordering::Relaxed);
        warn!("recording of {label} dropped: {}", stop.unwrap_or_default());
    } else {
        info!("recording of {label} ended");
    }
}

/// Runs the hub's timers, the heap trim (`server.heap_trim_secs`, see
/// `heap_trim`) and the sampling of the media load that sets the merge
/// window (`merge_policy`), until `shutdown` flips.
pub async fn run_hub_timers(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(HUB_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_trim = tokio::time::Instant::now();
    // The media load that sets the merge window (`merge_policy`), sampled
    // on every tick over the time since the last one on tokio's clock.
    let mut load = crate::merge_policy::Load::default();
    let mut last_sample = tokio::time::Instant::now();
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => return,
            _ = tick.tick() => {
                let sampled = tokio::time::Instant::now();
                load = shared.sample_load(load, sampled - last_sample, workers);
                last_sample = sampled;
                let now = shared.now();
                shared.with_hub(|hub| {
                    if hub.poll_timeout().is_some_and(|t| t <= now) {
                        hub.handle_timeout(now);
                    }
                });
                if let Some(every) = shared.heap_trim
                    && last_trim.elapsed() >= every
                {
                    last_trim = tokio::time::Instant::now();
                    crate::heap_trim::release_free_pages();
                }
            }
        }
    }
}

/// Sockets [`run_direct_writes`] writes before it lets other tasks run.
pub(super) const DIRECT_WRITES_PER_TURN: usize = 256;

/// Turns [`run_direct_writes`] waits at most for more notices.
pub(super) const MAX_DEFERRALS: usize = 4;

/// Writes the shared-object notices that the hub's callers took for parked
/// connections (see `direct_write`), until `shutdown` flips.
///
/// One task, woken when the first connection gets queued. It lets the tasks
/// that are ready run before it writes, for up to `MAX_DEFERRALS` turns
/// of the scheduler while they keep adding notices: under load their
/// changes join the ones already queued, so a subscriber gets one write for
/// several changes (as when its own task wrote them); one change at a time,
/// that costs one turn. After every `DIRECT_WRITES_PER_TURN` sockets it
/// lets the other tasks run. On a server with several cores all direct
/// writes run on one at a time; the connections' own writes (media, busy
/// subscribers) still spread over all of them.
pub async fn run_direct_writes(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut peers: Vec<Arc<Peer>> = Vec::new();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => return,
            () = shared.direct_writes.wait() => {}
        }
        // Like a server that writes when it has read everything (Redis):
        // while the tasks that ran meanwhile keep adding notices, let them
        // go on, so that each socket gets one write for all of them. One
        // change at a time, this costs one turn of the scheduler.
        let mut taken = shared.lock().direct_taken;
        for _ in 0..MAX_DEFERRALS {
            tokio::task::yield_now().await;
            let now = shared.lock().direct_taken;
            if now == taken {
                break;
            }
            taken = now;
        }
        std::mem::swap(&mut peers, &mut shared.lock().direct);
        let mut written = 0;
        for (i, peer) in peers.drain(..).enumerate() {
            if i > 0 && i % DIRECT_WRITES_PER_TURN == 0 {
                // A large room must not hold the worker for its whole
                // fan-out (10 000 subscribers: ~70 ms): players' media and
                // readers get their turn now and then.
                tokio::task::yield_now().await;
            }
            let flushed = peer.flush();
            written += flushed.written;
            if flushed.wake {
                peer.wakeup.wake();
            }
        }
        if written > 0 {
            shared
                .bytes_out
                .fetch_add(written as u64, Ordering::Relaxed);
        }
    }
}
