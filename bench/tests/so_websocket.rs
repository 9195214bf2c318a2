//! `tern-load so` against a real tern (runtime-std's `serve_on` on
//! loopback listeners, in this process) with half of the subscribers and
//! writers on WebSocket: every subscriber of both kinds must receive
//! changes, and latency must be recorded for both.

use std::time::Duration;
use tern_bench::load_so::{self, SoOptions, Target};
use tern_bench::procfs::Procs;
use tern_bench::session::RtmpUrl;
use tern_runtime_std::config::Config;

#[test]
fn mixed_rtmp_and_websocket_subscribers_all_receive_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (addresses_tx, addresses_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let data_dir = dir.path().to_owned();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let rtmp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addresses_tx
                .send((rtmp.local_addr().unwrap(), http.local_addr().unwrap()))
                .unwrap();
            let mut config = Config::default();
            config.server.data_dir = data_dir;
            tern_runtime_std::serve_on(config, rtmp, http, async {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
        });
    });
    let (rtmp, http) = addresses_rx.recv().unwrap();

    let run = load_so::run(&SoOptions {
        target: Target::Tern {
            rtmp: Some(RtmpUrl::parse(&format!("rtmp://{rtmp}/chat/wsload")).unwrap()),
            ws: Some(format!("ws://{http}/chat/wsload")),
            ws_share: 0.5,
            name: "bench".to_owned(),
            more_rtmp: Vec::new(),
        },
        writers: 2,
        subscribers: 4,
        rate: 50.0,
        window: 4,
        value_bytes: 64,
        warmup: Duration::from_millis(300),
        duration: Duration::from_secs(1),
        label: "tern".to_owned(),
        server: Procs::new(&[]),
        connect_concurrency: 8,
    });
    let _ = stop_tx.send(());
    server.join().unwrap();
    let run = run.unwrap();

    assert_eq!(run.failed, 0, "{run:?}");
    assert_eq!((run.ws_subscribers, run.ws_writers), (2, 1), "{run:?}");
    assert_eq!(run.starved_subscribers, 0, "{run:?}");
    // 2 writers x 50/s x 1 s, every change to 4 subscribers: about 400.
    assert!(run.sent >= 60, "{run:?}");
    assert!(run.delivered >= 4 * 60, "{run:?}");
    assert!(run.ws_delivered >= 2 * 60, "{run:?}");
    assert!(run.delivered - run.ws_delivered >= 2 * 60, "{run:?}");
    let (rtmp_p99, ws_p99) = (run.rtmp_latency_p99_ms, run.ws_latency_p99_ms);
    assert!(rtmp_p99.is_some_and(|ms| ms > 0.0), "{run:?}");
    assert!(ws_p99.is_some_and(|ms| ms > 0.0), "{run:?}");
    assert!(
        run.latency_p99_ms > 0.0 && run.latency_max_ms < 1000.0,
        "{run:?}"
    );
}
