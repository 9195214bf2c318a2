//! tern-tests: end-to-end tests against the built `tern` binary and real
//! clients (ffmpeg, rtmpdump, GStreamer, WebSocket clients). The test files
//! live in `tests/tests/`; this library holds shared helpers.
