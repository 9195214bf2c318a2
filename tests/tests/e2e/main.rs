//! End-to-end tests of the `tern` binary against real clients (ffmpeg,
//! rtmpdump, GStreamer, nginx-rtmp, nats-server, Chromium, Python and
//! independent Rust clients), one module per area, in one test binary:
//! one link instead of twenty, and the tests of every area share the
//! harness's two threads (docs/testing.md).
//!
//! One area: `cargo test -p tern-tests --test e2e relay::`.

mod access_control;
mod admin_api;
mod amf3_commands;
mod amf3_py3amf;
mod amf3_shared_objects;
mod browser_demo;
mod cluster;
mod cluster_streams;
mod flv_playback;
mod http_and_shutdown;
mod interop;
mod limits;
mod recording;
mod relay;
mod rtmp_clients;
mod shared_objects;
mod so_rate_limit;
mod tls;
mod webhooks;
mod websocket_bridge;
