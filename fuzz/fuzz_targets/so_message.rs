//! Shared-object message bodies (type 19 payloads).
//!
//! Input: `[limits_a, limits_b, payload…]`.
//!
//! Checks, besides "never panics": on success, the encoding decodes again
//! (same limits) to a message that encodes to the same bytes, with the same
//! name, version, persistence and number of events. (Bytes are compared, not
//! values, because a number may be NaN; flags other than bit 2 and the
//! reserved field are not kept, so the first encoding may differ from the
//! input.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_core::message::{MAX_SO_EVENTS, SharedObjectMessage};
use tern_core_fuzz::limits_from;

fuzz_target!(|data: &[u8]| {
    let Some((&[la, lb], payload)) = data.split_first_chunk::<2>() else {
        return;
    };
    let limits = limits_from(la, lb);
    let Ok(msg) = SharedObjectMessage::decode(payload, &limits) else {
        return;
    };
    assert!(msg.events.len() <= MAX_SO_EVENTS);
    for ev in &msg.events {
        let _ = tern_core::message::so_event_name(ev.type_code());
    }
    let e1 = msg.to_bytes();
    let again = SharedObjectMessage::decode(&e1, &limits)
        .unwrap_or_else(|e| panic!("re-decode of {msg:?} failed: {e}"));
    assert_eq!(again.name, msg.name);
    assert_eq!(again.version, msg.version);
    assert_eq!(again.persistent, msg.persistent);
    assert_eq!(again.events.len(), msg.events.len());
    assert_eq!(
        again.to_bytes(),
        e1,
        "encode(decode(encode(m))) != encode(m)"
    );
});
