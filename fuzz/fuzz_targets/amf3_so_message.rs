//! AMF3 shared-object messages (type 16 payloads, values after AVM+
//! switches) and their type-16 re-encoding.
//!
//! Input: `[limits_a, limits_b, payload…]`; the payload is given to
//! `Message::decode` as a type-16 message, and when its first byte is not
//! the encoding byte 0 it is also tried with 0 put in front (so the fuzzer
//! need not find that byte).
//!
//! Checks, besides "never panics": on success, the message's type-16
//! encoding (`encode_amf3`) decodes again (default limits: the AMF3 form
//! is larger than the AMF0 one) with the same name, version, persistence
//! and event count, and one more round trip through type 16 changes
//! nothing (the shared model's narrowings are applied once); bytes are
//! compared, not values, because a number may be NaN.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tern_core::Limits;
use tern_core::chunk::RawMessage;
use tern_core::message::{Message, SharedObjectMessage, type_id};
use tern_core_fuzz::limits_from;

fn type16(payload: Vec<u8>, limits: &Limits) -> Option<SharedObjectMessage> {
    let raw = RawMessage {
        csid: 3,
        timestamp: 0,
        type_id: type_id::SHARED_OBJECT_AMF3,
        stream_id: 0,
        payload: Bytes::from(payload),
    };
    match Message::decode(&raw, limits) {
        Ok(Message::SharedObject(so)) => Some(so),
        Ok(other) => panic!("type 16 decoded as {other:?}"),
        Err(_) => None,
    }
}

fn amf3_bytes(so: &SharedObjectMessage) -> Vec<u8> {
    let mut out = Vec::new();
    so.encode_amf3(&Limits::default(), &mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&[la, lb], payload)) = data.split_first_chunk::<2>() else {
        return;
    };
    let limits = limits_from(la, lb);
    let mut tries = vec![payload.to_vec()];
    if payload.first() != Some(&0) {
        let mut with_byte = vec![0];
        with_byte.extend_from_slice(payload);
        tries.push(with_byte);
    }
    for p in tries {
        let Some(so) = type16(p, &limits) else {
            continue;
        };
        let e1 = amf3_bytes(&so);
        assert_eq!(e1.first(), Some(&0), "type 16 starts with encoding byte 0");
        let m1 = type16(e1.clone(), &Limits::default())
            .unwrap_or_else(|| panic!("re-decode of the type-16 form of {so:?} failed"));
        assert_eq!(m1.name, so.name);
        assert_eq!(m1.version, so.version);
        assert_eq!(m1.persistent, so.persistent);
        assert_eq!(m1.events.len(), so.events.len());
        let e2 = amf3_bytes(&m1);
        let m2 = type16(e2.clone(), &Limits::default()).expect("second re-decode failed");
        assert_eq!(
            m2.to_bytes(),
            m1.to_bytes(),
            "type-16 round trip is not a fixpoint"
        );
        assert_eq!(amf3_bytes(&m2), e2);
    }
});
