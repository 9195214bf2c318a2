//! Idle mode: N connections that complete the handshake and `connect`,
//! then sit idle (answering pings), to measure the server's memory per
//! connection.

use crate::procfs::Procs;
use crate::record::{IdleRun, Record};
use crate::session::{Clock, RtmpUrl, Session, SessionError};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tern_core::rtmp::ClientEvent;
use tokio::sync::Semaphore;

/// What to run.
#[derive(Clone, Debug)]
pub struct IdleOptions {
    /// Server URL (`rtmp://host:port/app`).
    pub url: RtmpUrl,
    /// Connections.
    pub connections: usize,
    /// How long to wait once all are connected before measuring.
    pub settle: Duration,
    /// Server label for the record.
    pub label: String,
    /// Server processes to measure.
    pub server: Procs,
    /// Connection attempts in flight at once.
    pub connect_concurrency: usize,
}

#[derive(Debug, Default)]
struct Counts {
    connected: Cell<usize>,
    failed: Cell<usize>,
    first_error: RefCell<Option<String>>,
    stop: Cell<bool>,
}

/// Runs one idle measurement; prints its record as a JSON line on stdout.
pub fn run(options: &IdleOptions) -> Result<IdleRun, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, drive(options))
}

async fn drive(options: &IdleOptions) -> Result<IdleRun, String> {
    let clock = Clock::new();
    let base = options.server.sample(clock.now_secs());
    let counts = Rc::new(Counts::default());
    let connecting = Arc::new(Semaphore::new(options.connect_concurrency.max(1)));
    for id in 0..options.connections {
        let permit = Arc::clone(&connecting)
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (url, counts) = (options.url.clone(), Rc::clone(&counts));
        tokio::task::spawn_local(async move {
            if let Err(e) = idle(id, &url, clock, &counts, permit).await
                && !counts.stop.get()
            {
                counts.failed.set(counts.failed.get() + 1);
                counts
                    .first_error
                    .borrow_mut()
                    .get_or_insert_with(|| e.to_string());
            }
        });
    }
    let by = clock.now_secs() + 60.0;
    while counts.connected.get() + counts.failed.get() < options.connections
        && clock.now_secs() < by
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(options.settle).await;
    let now = options.server.sample(clock.now_secs());
    let tool = Procs::this().sample(clock.now_secs());
    counts.stop.set(true);
    let connected = counts.connected.get();
    let run = IdleRun {
        server: options.label.clone(),
        connections: options.connections,
        connected,
        failed: counts.failed.get(),
        server_rss_base: base.rss,
        server_rss: now.rss,
        rss_per_connection: now.rss.saturating_sub(base.rss) as f64 / connected.max(1) as f64,
        tool_rss: tool.rss,
    };
    println!(
        "{}",
        serde_json::to_string(&Record::Idle(run.clone())).map_err(|e| e.to_string())?
    );
    eprintln!(
        "{} idle: {} of {} connected ({} failed), server RSS {:.1} -> {:.1} MB, {:.0} B per connection",
        run.server,
        run.connected,
        run.connections,
        run.failed,
        run.server_rss_base as f64 / 1e6,
        run.server_rss as f64 / 1e6,
        run.rss_per_connection
    );
    if let Some(e) = counts.first_error.borrow().as_ref() {
        eprintln!("  first error: {e}");
    }
    Ok(run)
}

async fn idle(
    id: usize,
    url: &RtmpUrl,
    clock: Clock,
    counts: &Counts,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Result<(), SessionError> {
    let mut permit = Some(permit);
    let mut session = Session::open(url, clock, id as u64 + 1).await?;
    loop {
        session.read().await?;
        while let Some(event) = session.conn.poll_event() {
            match event {
                ClientEvent::Connected { .. } if permit.take().is_some() => {
                    counts.connected.set(counts.connected.get() + 1);
                }
                ClientEvent::ConnectFailed { code, .. } => {
                    return Err(SessionError::Refused(code));
                }
                _ => {}
            }
        }
        session.flush().await?;
        if counts.stop.get() {
            return Ok(());
        }
    }
}
