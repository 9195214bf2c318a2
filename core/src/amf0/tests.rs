//! Whole-codec tests: the vectors from PROTOCOL-NOTES.md, every marker,
//! every error, bounds, and property tests.

use super::*;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex: {s}");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn enc(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode(v, &mut out);
    out
}

fn enc_all(vs: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in vs {
        encode(v, &mut out);
    }
    out
}

fn dec(bytes: &[u8]) -> Result<Value, Amf0Error> {
    dec_with(bytes, &Limits::default())
}

/// Decodes exactly one value that must span all of `bytes`.
fn dec_with(bytes: &[u8], limits: &Limits) -> Result<Value, Amf0Error> {
    let mut input = bytes;
    let v = decode(&mut input, limits)?;
    assert!(input.is_empty(), "{} bytes left over", input.len());
    Ok(v)
}

fn limits(depth: usize, values: usize) -> Limits {
    Limits {
        amf0_max_depth: depth,
        amf0_max_values: values,
        ..Limits::default()
    }
}

/// Decodes, compares with `expected`, and re-encodes to the same bytes.
fn vector(bytes_hex: &str, expected: &[Value]) {
    let bytes = hex(bytes_hex);
    let values = decode_all(&bytes, &Limits::default()).unwrap();
    assert_eq!(values, expected);
    assert_eq!(enc_all(&values), bytes);
}

fn s(x: &str) -> Value {
    Value::string(x)
}

fn props(pairs: &[(&str, Value)]) -> Properties {
    pairs
        .iter()
        .map(|(k, v)| (String::from(*k), v.clone()))
        .collect()
}

// ---- PROTOCOL-NOTES.md vectors ----

#[test]
fn vector_object_mike() {
    vector(
        "03 0004 6e616d65 02 0004 4d696b65 0003 616765 00 403e000000000000 \
         0005 616c696173 02 0004 4d696b65 0000 09",
        &[Value::object([
            ("name", s("Mike")),
            ("age", Value::Number(30.0)),
            ("alias", s("Mike")),
        ])],
    );
}

#[test]
fn vector_on_stream_send() {
    vector(
        "02 000c 6f6e53747265616d53656e64 08 00000000 0005 76616c7565 02 0001 31 000009",
        &[
            s("onStreamSend"),
            Value::EcmaArray {
                count: 0,
                properties: props(&[("value", s("1"))]),
            },
        ],
    );
}

#[test]
fn vector_ecma_array_counted() {
    vector(
        "08 00000002 0001 30 02 0005 68656c6c6f 0001 31 02 0005 776f726c64 000009",
        &[Value::EcmaArray {
            count: 2,
            properties: props(&[("0", s("hello")), ("1", s("world"))]),
        }],
    );
}

#[test]
fn vector_create_stream_body() {
    vector(
        "02000c 63726561746553747265616d 00 4008000000000000 05",
        &[s("createStream"), Value::Number(3.0), Value::Null],
    );
}

#[test]
fn vector_play_body() {
    vector(
        "020004 706c6179 00 0000000000000000 05 020009 73706565782e666c76",
        &[s("play"), Value::Number(0.0), Value::Null, s("speex.flv")],
    );
}

#[test]
fn vector_on_status_body() {
    // The 130-byte body of the chunked onStatus vector, chunk header removed.
    let body = "02 0008 6f6e537461747573 00 0000000000000000 05 03 0005 6c6576656c \
         020006 737461747573 0004 636f6465 020017 \
         4e657453747265616d2e5075626c6973682e5374617274 000b 6465736372697074696f6e \
         020000 0007 64657461696c73 02000a 6d697865722d6f757433 0008 636c69656e746964 \
         00 3ff0000000000000 00 0009";
    assert_eq!(hex(body).len(), 130);
    vector(
        body,
        &[
            s("onStatus"),
            Value::Number(0.0),
            Value::Null,
            Value::object([
                ("level", s("status")),
                ("code", s("NetStream.Publish.Start")),
                ("description", s("")),
                ("details", s("mixer-out3")),
                ("clientid", Value::Number(1.0)),
            ]),
        ],
    );
}

#[test]
fn vector_set_data_frame_body() {
    vector(
        "02000d 40736574446174614672616d65 02000a 6f6e4d65746144617461 08 00000001 \
         0008 6475726174696f6e 00 0000000000000000 000009",
        &[
            s("@setDataFrame"),
            s("onMetaData"),
            Value::EcmaArray {
                count: 1,
                properties: props(&[("duration", Value::Number(0.0))]),
            },
        ],
    );
}

// ---- every marker ----

/// One value of every variant, with its exact encoding.
fn every_marker() -> Vec<(Value, Vec<u8>)> {
    vec![
        (Value::Number(1.5), hex("00 3ff8000000000000")),
        (Value::Boolean(true), hex("01 01")),
        (Value::Boolean(false), hex("01 00")),
        (s("hé"), hex("02 0003 68c3a9")),
        (s(""), hex("02 0000")),
        (
            Value::object([("a", Value::Null)]),
            hex("03 0001 61 05 000009"),
        ),
        (Value::Object(vec![]), hex("03 000009")),
        (Value::Null, hex("05")),
        (Value::Undefined, hex("06")),
        (Value::Reference(0x0102), hex("07 0102")),
        (
            Value::EcmaArray {
                count: 7,
                properties: props(&[("k", Value::Boolean(false))]),
            },
            hex("08 00000007 0001 6b 01 00 000009"),
        ),
        (
            Value::StrictArray(vec![Value::Number(0.0), s("x")]),
            hex("0a 00000002 00 0000000000000000 02 0001 78"),
        ),
        (Value::StrictArray(vec![]), hex("0a 00000000")),
        (
            Value::Date {
                millis: 1.0,
                time_zone: -60,
            },
            hex("0b 3ff0000000000000 ffc4"),
        ),
        (
            Value::LongString(String::from("ab")),
            hex("0c 00000002 6162"),
        ),
        (Value::Unsupported, hex("0d")),
        (
            Value::XmlDocument(String::from("<a/>")),
            hex("0f 00000004 3c612f3e"),
        ),
        (
            Value::TypedObject {
                class_name: String::from("C"),
                properties: props(&[("x", Value::Undefined)]),
            },
            hex("10 0001 43 0001 78 06 000009"),
        ),
        (
            Value::Avmplus(Bytes::from_static(&[0x04, 0x05])),
            hex("11 04 05"),
        ),
    ]
}

#[test]
fn each_marker_round_trips() {
    for (value, bytes) in every_marker() {
        assert_eq!(enc(&value), bytes, "{value:?}");
        assert_eq!(dec(&bytes).as_ref(), Ok(&value), "{bytes:02x?}");
    }
}

#[test]
fn nan_and_negative_zero_keep_their_bits() {
    for bits in [
        0x7ff8_0000_0000_0001_u64,
        0xfff0_0000_0000_0001,
        0x8000_0000_0000_0000,
    ] {
        let mut bytes = vec![0x00];
        bytes.extend_from_slice(&bits.to_be_bytes());
        let v = dec(&bytes).unwrap();
        assert_eq!(enc(&v), bytes);
    }
}

#[test]
fn nonzero_boolean_byte_is_true() {
    assert_eq!(dec(&[0x01, 0x02]), Ok(Value::Boolean(true)));
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let mut all = Vec::new();
    for (value, bytes) in every_marker() {
        all.push(value);
        for cut in 0..bytes.len() {
            assert_eq!(
                dec(&bytes[..cut]),
                Err(Amf0Error::Truncated),
                "cut at {cut} of {bytes:02x?}"
            );
        }
    }
    // And a nested value holding every marker at once.
    let nested = enc(&Value::object([
        ("all", Value::StrictArray(all.clone())),
        (
            "ecma",
            Value::EcmaArray {
                count: 0,
                properties: props(&[(
                    "t",
                    Value::TypedObject {
                        class_name: String::from("T"),
                        properties: vec![(String::from("a"), Value::StrictArray(all))],
                    },
                )]),
            },
        ),
    ]));
    assert!(dec(&nested).is_ok());
    for cut in 0..nested.len() {
        assert_eq!(
            dec(&nested[..cut]),
            Err(Amf0Error::Truncated),
            "cut at {cut}"
        );
    }
}

// ---- errors ----

#[test]
fn reserved_markers_are_typed_errors() {
    assert_eq!(dec(&[0x04]), Err(Amf0Error::ReservedMarker(0x04)));
    assert_eq!(dec(&[0x0E]), Err(Amf0Error::ReservedMarker(0x0E)));
    // Also when nested.
    assert_eq!(
        dec(&hex("03 0001 61 04 000009")),
        Err(Amf0Error::ReservedMarker(0x04))
    );
    assert_eq!(
        dec(&hex("0a 00000001 0e")),
        Err(Amf0Error::ReservedMarker(0x0E))
    );
}

#[test]
fn unknown_markers_are_typed_errors() {
    for m in 0x12..=0xFF_u8 {
        assert_eq!(dec(&[m, 0, 0, 0, 0]), Err(Amf0Error::UnknownMarker(m)));
    }
}

#[test]
fn object_end_where_a_value_is_expected() {
    assert_eq!(dec(&[0x09]), Err(Amf0Error::UnexpectedObjectEnd));
    assert_eq!(
        dec(&hex("0a 00000001 09")),
        Err(Amf0Error::UnexpectedObjectEnd)
    );
    // A non-empty key followed by 0x09.
    assert_eq!(
        dec(&hex("03 0001 61 09")),
        Err(Amf0Error::UnexpectedObjectEnd)
    );
}

#[test]
fn invalid_utf8_is_rejected_everywhere() {
    for bytes in [
        "02 0001 ff",
        "0c 00000002 c3 28",
        "0f 00000001 80",
        "03 0001 ff 05 000009",
        "08 00000000 0001 ff 05 000009",
        "10 0001 ff 000009",
    ] {
        assert_eq!(dec(&hex(bytes)), Err(Amf0Error::InvalidUtf8), "{bytes}");
    }
}

#[test]
fn huge_length_fields_with_tiny_input_fail_without_allocating() {
    // If any of these allocated from the length field alone, the test would
    // abort (capacity overflow / out of memory) instead of returning.
    for bytes in [
        "02 ffff 61",
        "0c ffffffff 61",
        "0f ffffffff 61",
        "0a ffffffff 05",
        "0a 7fffffff 05 05",
        "10 ffff 43",
        "03 ffff 61",
        "08 ffffffff 000009", // ECMA count is advisory: decodes fine
    ] {
        let r = dec(&hex(bytes));
        if bytes.starts_with("08") {
            assert!(r.is_ok(), "{bytes}: {r:?}");
        } else {
            assert_eq!(r, Err(Amf0Error::Truncated), "{bytes}");
        }
    }
    // A strict array count within the input but beyond the value budget is
    // refused before the array is reserved.
    assert_eq!(
        dec_with(&hex("0a 00000004 05 05 05 05"), &limits(4, 3)),
        Err(Amf0Error::TooManyValues { max: 3 })
    );
}

// ---- bounds ----

fn nest(depth: usize, leaf: Value, wrap: fn(Value) -> Value) -> Value {
    (0..depth).fold(leaf, |v, _| wrap(v))
}

#[test]
fn depth_limit() {
    let wraps: [fn(Value) -> Value; 4] = [
        |v| Value::object([("k", v)]),
        |v| Value::StrictArray(vec![v]),
        |v| Value::EcmaArray {
            count: 1,
            properties: vec![(String::from("k"), v)],
        },
        |v| Value::TypedObject {
            class_name: String::from("T"),
            properties: vec![(String::from("k"), v)],
        },
    ];
    for wrap in wraps {
        let ok = enc(&nest(3, Value::Null, wrap));
        assert!(dec_with(&ok, &limits(3, 100)).is_ok());
        let deep = enc(&nest(4, Value::Null, wrap));
        assert_eq!(
            dec_with(&deep, &limits(3, 100)),
            Err(Amf0Error::TooDeep { max: 3 })
        );
    }
    // Depth 0: scalars only.
    assert!(dec_with(&[0x05], &limits(0, 100)).is_ok());
    assert_eq!(
        dec_with(&hex("03 000009"), &limits(0, 100)),
        Err(Amf0Error::TooDeep { max: 0 })
    );
    // Deep input far beyond the limit does not recurse without bound.
    let mut bytes = [0x0A, 0, 0, 0, 1].repeat(100_000);
    bytes.push(0x05);
    assert_eq!(
        dec(&bytes),
        Err(Amf0Error::TooDeep {
            max: Limits::default().amf0_max_depth
        })
    );
}

#[test]
fn avmplus_nesting_counts_towards_depth() {
    // An AMF0 array holding AVM+ [[]] is depth 3.
    let bytes = hex("0a 00000001 11 09 03 01 09 01 01");
    assert!(dec_with(&bytes, &limits(3, 100)).is_ok());
    assert_eq!(
        dec_with(&bytes, &limits(2, 100)),
        Err(Amf0Error::TooDeep { max: 2 })
    );
}

#[test]
fn value_count_limit() {
    // Array + 3 nulls = 4 values.
    let bytes = hex("0a 00000003 05 05 05");
    assert!(dec_with(&bytes, &limits(4, 4)).is_ok());
    assert_eq!(
        dec_with(&bytes, &limits(4, 3)),
        Err(Amf0Error::TooManyValues { max: 3 })
    );
    // Object members count.
    let obj = enc(&Value::object([("a", Value::Null), ("b", Value::Null)]));
    assert!(dec_with(&obj, &limits(4, 3)).is_ok());
    assert_eq!(
        dec_with(&obj, &limits(4, 2)),
        Err(Amf0Error::TooManyValues { max: 2 })
    );
    // The budget spans the whole buffer in decode_all, but each decode call
    // starts afresh.
    let three = hex("05 05 05");
    assert!(decode_all(&three, &limits(4, 3)).is_ok());
    assert_eq!(
        decode_all(&three, &limits(4, 2)),
        Err(Amf0Error::TooManyValues { max: 2 })
    );
    let mut input = &three[..];
    for _ in 0..3 {
        assert_eq!(decode(&mut input, &limits(4, 1)), Ok(Value::Null));
    }
    // AMF3 values count too: AVM+ [1, 2] is 1 + 3 values.
    let avm = hex("11 09 05 01 04 01 04 02");
    assert!(dec_with(&avm, &limits(4, 4)).is_ok());
    assert_eq!(
        dec_with(&avm, &limits(4, 3)),
        Err(Amf0Error::TooManyValues { max: 3 })
    );
}

// ---- AVM+ ----

#[test]
fn avmplus_values_round_trip_and_stop_at_their_end() {
    let amf3_values = [
        // integer 300 (U29 0x82 0x2c)
        "04 822c",
        // string "hi"
        "06 05 6869",
        // object: class "P", sealed a, b, dynamic; a=1, b="hi", then c=null
        "0a 2b 03 50 03 61 03 62 04 01 06 05 6869 03 63 01 01",
        // array: dense [true, 2.5], associative {k: "v"}
        "09 05 03 6b 06 03 76 01 03 05 4004000000000000",
        // array of two objects sharing traits by reference
        "09 05 01 0a 13 03 50 03 61 03 0a 01 02",
    ];
    for amf3 in amf3_values {
        let amf3 = hex(amf3);
        // Inside an AMF0 strict array, followed by an AMF0 null: the
        // skipper must stop exactly at the AMF3 value's end.
        let mut bytes = hex("0a 00000002 11");
        bytes.extend_from_slice(&amf3);
        bytes.push(0x05);
        let v = dec(&bytes).unwrap();
        assert_eq!(
            v,
            Value::StrictArray(vec![Value::Avmplus(Bytes::from(amf3.clone())), Value::Null])
        );
        assert_eq!(enc(&v), bytes);
        for cut in 0..bytes.len() {
            assert_eq!(dec(&bytes[..cut]), Err(Amf0Error::Truncated));
        }
    }
}

#[test]
fn avmplus_errors() {
    assert_eq!(
        dec(&hex("11 0a 07 03 43")),
        Err(Amf0Error::Amf3(Amf3Error::Externalizable))
    );
    assert_eq!(
        dec(&hex("11 12")),
        Err(Amf0Error::Amf3(Amf3Error::UnknownMarker(0x12)))
    );
    assert_eq!(
        dec(&hex("11 0a 01")),
        Err(Amf0Error::Amf3(Amf3Error::BadTraitsReference(0)))
    );
    assert_eq!(dec(&hex("11")), Err(Amf0Error::Truncated));
}

// ---- property tests ----

/// Small valid AMF3 encodings to carry inside `Avmplus`.
const AMF3_SAMPLES: &[&[u8]] = &[
    &[0x01],
    &[0x03],
    &[0x04, 0x7F],
    &[0x06, 0x05, b'h', b'i'],
    &[0x09, 0x03, 0x01, 0x04, 0x01],
    &[0x0A, 0x0B, 0x01, 0x03, b'x', 0x04, 0x01, 0x01],
];

fn key() -> impl Strategy<Value = String> + Clone {
    "\\PC{0,8}"
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<f64>().prop_map(Value::Number),
        any::<bool>().prop_map(Value::Boolean),
        "\\PC{0,16}".prop_map(Value::String),
        Just(Value::Null),
        Just(Value::Undefined),
        any::<u16>().prop_map(Value::Reference),
        (any::<f64>(), any::<i16>())
            .prop_map(|(millis, time_zone)| Value::Date { millis, time_zone }),
        "\\PC{0,16}".prop_map(Value::LongString),
        Just(Value::Unsupported),
        "\\PC{0,16}".prop_map(Value::XmlDocument),
        proptest::sample::select(AMF3_SAMPLES).prop_map(|b| Value::Avmplus(Bytes::from_static(b))),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        let props = proptest::collection::vec((key(), inner.clone()), 0..6);
        prop_oneof![
            props.clone().prop_map(Value::Object),
            (any::<u32>(), props.clone())
                .prop_map(|(count, properties)| Value::EcmaArray { count, properties }),
            proptest::collection::vec(inner, 0..6).prop_map(Value::StrictArray),
            (key(), props).prop_map(|(class_name, properties)| Value::TypedObject {
                class_name,
                properties
            }),
        ]
    })
}

/// Value equality with numbers compared by their bits, so a NaN equals
/// the same NaN and -0.0 differs from 0.0 (`PartialEq` says the opposite
/// of both, and `arb_value` makes both).
fn same_value(a: &Value, b: &Value) -> bool {
    let same_props = |a: &Properties, b: &Properties| {
        a.len() == b.len()
            && a.iter()
                .zip(b.iter())
                .all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
    };
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.to_bits() == y.to_bits(),
        (
            Value::Date {
                millis: x,
                time_zone: tx,
            },
            Value::Date {
                millis: y,
                time_zone: ty,
            },
        ) => x.to_bits() == y.to_bits() && tx == ty,
        (Value::Object(x), Value::Object(y)) => same_props(x, y),
        (
            Value::EcmaArray {
                count: cx,
                properties: x,
            },
            Value::EcmaArray {
                count: cy,
                properties: y,
            },
        ) => cx == cy && same_props(x, y),
        (Value::StrictArray(x), Value::StrictArray(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (
            Value::TypedObject {
                class_name: cx,
                properties: x,
            },
            Value::TypedObject {
                class_name: cy,
                properties: y,
            },
        ) => cx == cy && same_props(x, y),
        // No floats inside: plain equality (also says false for two
        // different variants).
        _ => a == b,
    }
}

#[test]
fn same_value_compares_numbers_by_bits() {
    let nan = Value::Number(f64::NAN);
    assert!(same_value(&nan, &nan.clone()));
    assert!(!same_value(&Value::Number(0.0), &Value::Number(-0.0)));
    let obj = |n: f64| Value::Object(vec![(String::from("k"), Value::Number(n))]);
    assert!(same_value(&obj(1.0), &obj(1.0)));
    assert!(!same_value(&obj(1.0), &obj(2.0)));
    assert!(!same_value(&Value::Null, &Value::Undefined));
}

proptest! {
    // Cheap (microseconds a case): 1000 cases instead of proptest's 256.
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn encode_decode_encode_is_identity(v in arb_value()) {
        let bytes = enc(&v);
        let decoded = dec(&bytes).unwrap();
        prop_assert!(same_value(&decoded, &v), "decoded {:?}, encoded {:?}", decoded, v);
        prop_assert_eq!(enc(&decoded), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut input = &bytes[..];
        let _ = decode(&mut input, &Limits::small());
        let _ = decode_all(&bytes, &Limits::small());
        let _ = decode_all(&bytes, &limits(2, 16));
    }

    #[test]
    fn mutated_encodings_never_panic(
        v in arb_value(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
    ) {
        let mut bytes = enc(&v);
        for (at, b) in edits {
            let len = bytes.len();
            bytes[at % len] = b;
        }
        let cut = cut % (bytes.len() + 1);
        let _ = decode_all(&bytes[..cut], &Limits::default());
        if let Ok(values) = decode_all(&bytes, &Limits::default()) {
            // Whatever decodes re-encodes to bytes that decode the same way
            // (booleans other than 0/1 are the one normalisation).
            let again = enc_all(&values);
            let reparsed = decode_all(&again, &Limits::default()).unwrap();
            prop_assert_eq!(enc_all(&reparsed), again);
        }
    }
}

#[test]
fn strings_decode_in_place_as_they_decode_owned() {
    let l = Limits::default();
    for (input, text) in [("02 0002 6869 05", "hi"), ("0c 00000002 6869 05", "hi")] {
        let bytes = hex(input);
        let mut rest = &bytes[..];
        assert_eq!(decode_str(&mut rest), Ok(Some(text)));
        assert_eq!(rest, &[0x05], "advanced past the string only");
        let mut owned = &bytes[..];
        assert_eq!(decode(&mut owned, &l).unwrap().as_str(), Some(text));
    }
    // Another type: nothing read, input untouched.
    let number = hex("00 3ff0000000000000");
    let mut rest = &number[..];
    assert_eq!(decode_str(&mut rest), Ok(None));
    assert_eq!(rest, &number[..]);
    // The owned decode's errors, input untouched.
    for (input, error) in [
        ("02 0002 68", Amf0Error::Truncated),
        ("02 0001 ff", Amf0Error::InvalidUtf8),
        ("", Amf0Error::Truncated),
    ] {
        let bytes = hex(input);
        let mut rest = &bytes[..];
        assert_eq!(decode_str(&mut rest), Err(error.clone()));
        assert_eq!(rest, &bytes[..]);
        assert_eq!(decode(&mut &bytes[..], &l), Err(error));
    }
}
