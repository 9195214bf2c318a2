//! AMF3 decoding under small limits, and the mappings of what decodes.
//!
//! Input: `[limits_a, limits_b, amf3…]`.
//!
//! Checks, besides "never panics":
//! - `decode` leaves its input untouched on error and consumes something on
//!   success;
//! - the encoding of a decoded value decodes again under the same limits
//!   (inline and referenced string bytes share one budget, so the string
//!   references the encoder re-creates cost what the input's inline
//!   repeats did) to a value with the same encoding (encodings are
//!   compared, not values: a double may be NaN);
//! - `resolve`, `to_amf0`, `from_amf0`, `unwrap_avmplus`, `wrap_avmplus`
//!   and `to_json` never panic; a resolved value holds no reference, and
//!   its AVM+ form unwraps to what `to_amf0` gives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_core::Limits;
use tern_core::amf0;
use tern_core::amf3::{self, Value};
use tern_core_fuzz::limits_from;

fn enc(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    amf3::encode(v, &mut out);
    out
}

fn amf0_bytes(v: &amf0::Value) -> Vec<u8> {
    let mut out = Vec::new();
    amf0::encode(v, &mut out);
    out
}

fn has_reference(v: &Value) -> bool {
    match v {
        Value::Reference { .. } => true,
        Value::Array(a) => {
            a.assoc.iter().any(|(_, v)| has_reference(v)) || a.dense.iter().any(has_reference)
        }
        Value::Object(o) => o.members().any(|(_, v)| has_reference(v)),
        Value::VectorObject { items, .. } => items.iter().any(has_reference),
        Value::Dictionary { entries, .. } => entries
            .iter()
            .any(|(k, v)| has_reference(k) || has_reference(v)),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[la, lb], buf)) = data.split_first_chunk::<2>() else {
        return;
    };
    let limits = limits_from(la, lb);
    let mut input = buf;
    let v = match amf3::decode(&mut input, &limits) {
        Ok(v) => v,
        Err(_) => {
            assert_eq!(input.len(), buf.len(), "decode advanced on error");
            return;
        }
    };
    let consumed = buf.len() - input.len();
    assert!(consumed > 0, "decoded {v:?} from no bytes");

    let e1 = enc(&v);
    let roomy = Limits {
        max_message: u32::MAX,
        ..limits.clone()
    };
    let mut again_input = &e1[..];
    let again = amf3::decode(&mut again_input, &limits)
        .unwrap_or_else(|e| panic!("re-decode of {v:?} ({e1:02x?}) failed: {e}"));
    assert!(again_input.is_empty(), "re-decode left bytes");
    assert_eq!(enc(&again), e1, "encode(decode(encode(v))) != encode(v)");

    let Ok(tree) = amf3::resolve(&v, &limits) else {
        return;
    };
    assert!(!has_reference(&tree), "resolved value holds a reference");
    let _ = amf3::to_json(&tree);
    let shared = amf3::to_amf0(&tree);
    let _ = amf3::from_amf0(&shared, &roomy);
    let wrapped = amf3::wrap_avmplus(&shared, &roomy);
    let mut unwrapped = amf0::Value::Avmplus(bytes::Bytes::from(enc(&tree)));
    if amf3::unwrap_avmplus(&mut unwrapped, &roomy).is_ok() {
        assert_eq!(amf0_bytes(&unwrapped), amf0_bytes(&shared));
    }
    let mut twice = wrapped;
    let _ = amf3::unwrap_avmplus(&mut twice, &roomy);
});
