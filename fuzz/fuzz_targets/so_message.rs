//! Shared-object message bodies (type 19 payloads).
//!
//! Input: `[limits_a, limits_b, payload…]`.
//!
//! Checks, besides "never panics": on success, the encoding decodes again
//! (same limits; or, when it is larger than the input and refused for the
//! value or string budget only, without those budgets — see
//! `tern_core_fuzz::over_budget`) to a message that encodes to the same bytes, with the same
//! name, version, persistence and number of events. (Bytes are compared, not
//! values, because a number may be NaN; flags other than bit 2 and the
//! reserved field are not kept, so the first encoding may differ from the
//! input.) The in-place view (`SharedObjectView`) gives the same message or
//! the same error, and a string change it reads in place is the owned
//! event's key and string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_core::Limits;
use tern_core::message::{MAX_SO_EVENTS, SharedObjectMessage, SharedObjectView, SoEvent};
use tern_core_fuzz::{limits_from, over_budget, without_budgets};

fuzz_target!(|data: &[u8]| {
    let Some((&[la, lb], payload)) = data.split_first_chunk::<2>() else {
        return;
    };
    let limits = limits_from(la, lb);
    let viewed = SharedObjectView::parse(payload).and_then(|v| v.to_message(&limits));
    match (viewed, SharedObjectMessage::decode(payload, &limits)) {
        // Bytes, not values: a number may be NaN.
        (Ok(a), Ok(b)) => assert_eq!(a.to_bytes(), b.to_bytes()),
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("view {a:?}, owned decode {b:?}"),
    }
    if let Ok(view) = SharedObjectView::parse(payload) {
        // Default limits: a tiny value budget may refuse what is read in
        // place without one.
        let default = Limits::default();
        for event in view.events().flatten() {
            if let Ok(Some((key, value))) = event.string_change() {
                match event.to_event(&default) {
                    Ok(
                        SoEvent::Change { key: k, value: v }
                        | SoEvent::RequestChange { key: k, value: v },
                    ) => {
                        assert_eq!(k, key);
                        assert_eq!(v.as_str(), Some(value));
                    }
                    other => panic!("{key:?} = {value:?} read in place, owned: {other:?}"),
                }
            }
        }
    }
    let Ok(msg) = SharedObjectMessage::decode(payload, &limits) else {
        return;
    };
    assert!(msg.events.len() <= MAX_SO_EVENTS);
    for ev in &msg.events {
        let _ = tern_core::message::so_event_name(ev.type_code());
    }
    let e1 = msg.to_bytes();
    let again = match SharedObjectMessage::decode(&e1, &limits) {
        Ok(again) => again,
        // The shared model's form grew (references resolved into copies):
        // it must still read back, without the budgets.
        Err(e) if e1.len() > payload.len() && over_budget(&e) => {
            SharedObjectMessage::decode(&e1, &without_budgets(&limits))
                .unwrap_or_else(|e| panic!("re-decode of {msg:?} without budgets failed: {e}"))
        }
        Err(e) => panic!("re-decode of {msg:?} failed: {e}"),
    };
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
