//! One hub with RTMP and WebSocket clients, driven through real connections
//! in virtual time by an `arbitrary` sequence of operations: connects,
//! shared-object use/set/delete/send/release (by clients and by the
//! server), publish/play/media, stalled and trickling readers,
//! disconnects and timer advances. The checks are listed in
//! `tern_core_fuzz::hub_world` and docs/fuzzing.md.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_core_fuzz::hub_world::{Script, World};

fuzz_target!(|script: Script| {
    World::run(&script);
});
