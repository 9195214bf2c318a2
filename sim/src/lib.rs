//! tern-sim: deterministic simulation of mixed RTMP/WebSocket scenarios.
//!
//! This crate will run runtime-std's accept loop and connection tasks on
//! turmoil sockets with seeded faults (issue "Deterministic simulation").
//! It is empty until the server runtime exists.
