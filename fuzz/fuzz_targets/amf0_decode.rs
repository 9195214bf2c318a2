//! AMF0 decoding under small limits.
//!
//! Input: `[limits_a, limits_b, amf0…]`.
//!
//! Checks, besides "never panics":
//! - `decode` leaves its input untouched on error and consumes something on
//!   success;
//! - on `decode_all` success, encoding the values gives back the input byte
//!   for byte, except that a boolean byte other than 0/1 comes back as 0x01
//!   (the documented normalisation), and the encoding decodes again (same
//!   limits) to values that encode identically;
//! - the first value found by `decode_all` is what `decode` finds alone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_core::amf0::{self, Value};
use tern_core_fuzz::limits_from;

fn encode_all(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        amf0::encode(v, &mut out);
    }
    out
}

/// `encoded` equals `original` except at normalised boolean bytes.
fn assert_same_up_to_booleans(original: &[u8], encoded: &[u8]) {
    assert_eq!(
        original.len(),
        encoded.len(),
        "re-encoding changed the length"
    );
    for (i, (&a, &b)) in original.iter().zip(encoded).enumerate() {
        assert!(
            a == b || (b == 1 && a > 1),
            "byte {i}: input {a:#04x}, re-encoded {b:#04x}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[la, lb], buf)) = data.split_first_chunk::<2>() else {
        return;
    };
    let limits = limits_from(la, lb);

    let mut input = buf;
    let single = amf0::decode(&mut input, &limits);
    match &single {
        Ok(v) => {
            let consumed = buf.len() - input.len();
            assert!(consumed > 0, "decoded {v:?} from no bytes");
            let mut e = Vec::new();
            amf0::encode(v, &mut e);
            assert_same_up_to_booleans(&buf[..consumed], &e);
        }
        Err(_) => assert_eq!(input.len(), buf.len(), "decode advanced on error"),
    }

    if let Ok(values) = amf0::decode_all(buf, &limits) {
        if let Some(first) = values.first() {
            let single = single
                .as_ref()
                .expect("decode_all succeeded but decode failed");
            // Compare encodings: values may hold NaN, which is not == itself.
            assert_eq!(
                encode_all(std::slice::from_ref(first)),
                encode_all(std::slice::from_ref(single))
            );
        }
        let e1 = encode_all(&values);
        assert_same_up_to_booleans(buf, &e1);
        let again = amf0::decode_all(&e1, &limits).expect("re-decode of an encoding failed");
        assert_eq!(again.len(), values.len());
        assert_eq!(
            encode_all(&again),
            e1,
            "encode(decode(encode(v))) != encode(v)"
        );
    }
});
