//! Published test vectors (see `testdata/README.md`), PyAMF's integer
//! vectors, bounds, references and the shared-model mapping; property tests
//! at the end.

use super::*;
use crate::Limits;
use crate::amf0;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use bytes::Bytes;

macro_rules! vector {
    ($file:expr) => {
        include_bytes!(concat!("testdata/", $file)).as_slice()
    };
}

fn dec(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut input = bytes;
    let v = decode(&mut input, &Limits::default())?;
    assert!(input.is_empty(), "{} bytes left", input.len());
    Ok(v)
}

fn enc(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode(v, &mut out);
    out
}

/// Decodes `bytes` to `expected` and re-encodes it to `bytes`.
fn exact(bytes: &[u8], expected: &Value) {
    assert_eq!(dec(bytes).as_ref(), Ok(expected), "decoding {bytes:02x?}");
    assert_eq!(enc(expected), bytes, "encoding {expected:?}");
}

fn s(text: &str) -> Value {
    Value::string(text)
}

fn dense(items: Vec<Value>) -> Value {
    Value::Array(Array {
        assoc: Vec::new(),
        dense: items,
    })
}

fn obj<const N: usize>(
    class: &str,
    sealed: [(&str, Value); N],
    dynamic: Option<Properties>,
) -> Value {
    Value::Object(Object {
        class_name: String::from(class),
        sealed: sealed
            .into_iter()
            .map(|(k, v)| (String::from(k), v))
            .collect(),
        dynamic,
    })
}

fn props<const N: usize>(pairs: [(&str, Value); N]) -> Properties {
    pairs
        .into_iter()
        .map(|(k, v)| (String::from(k), v))
        .collect()
}

fn reference(marker: u8, index: u32) -> Value {
    Value::Reference { marker, index }
}

#[test]
fn scalars() {
    exact(vector!("amf3-undefined.bin"), &Value::Undefined);
    exact(vector!("amf3-null.bin"), &Value::Null);
    exact(vector!("amf3-true.bin"), &Value::Boolean(true));
    exact(vector!("amf3-false.bin"), &Value::Boolean(false));
    exact(vector!("amf3-0.bin"), &Value::Integer(0));
    exact(vector!("amf3-min.bin"), &Value::Integer(INTEGER_MIN));
    exact(vector!("amf3-max.bin"), &Value::Integer(INTEGER_MAX));
    exact(vector!("amf3-integer-2byte.bin"), &Value::Integer(0x80));
    exact(vector!("amf3-integer-3byte.bin"), &Value::Integer(0x4000));
    exact(vector!("amf3-float.bin"), &Value::Double(3.5));
    exact(vector!("amf3-bignum.bin"), &Value::Double(2f64.powi(1000)));
    exact(
        vector!("amf3-large-min.bin"),
        &Value::Double(-268_435_457.0),
    );
    exact(vector!("amf3-large-max.bin"), &Value::Double(268_435_456.0));
    exact(
        vector!("amf3-double-positive-infinity.bin"),
        &Value::Double(f64::INFINITY),
    );
    exact(vector!("amf3-string.bin"), &s("String . String"));
    exact(vector!("amf3-symbol.bin"), &s("foo"));
    exact(vector!("amf3-date.bin"), &Value::Date(0.0));
    exact(vector!("amf3-date-minus-millis.bin"), &Value::Date(-1.0));
    exact(
        vector!("amf3-date-invalid-millis.bin"),
        &Value::Date(f64::INFINITY),
    );
    exact(
        vector!("amf3-xml-doc.bin"),
        &Value::XmlDocument(String::from("<parent><child prop=\"test\" /></parent>")),
    );
    let xml = Value::Xml(String::from("<parent><child prop=\"test\"/></parent>"));
    exact(vector!("amf3-xml.bin"), &xml);
    exact(
        vector!("amf3-byte-array.bin"),
        &Value::ByteArray(vec![
            0, 3, 0xE3, 0x81, 0x93, 0xE3, 0x82, 0x8C, b't', b'e', b's', b't', 0x40,
        ]),
    );
}

/// Integer forms from PyAMF 0.9.1's `pyamf/tests/test_amf3.py`
/// (`test_integer` encoder and decoder cases): every U29 length and both
/// ends of the range, and the doubles written for integers past it.
#[test]
fn pyamf_integer_vectors() {
    let cases: &[(i32, &[u8])] = &[
        (0, &[0x04, 0x00]),
        (1, &[0x04, 0x01]),
        (127, &[0x04, 0x7f]),
        (128, &[0x04, 0x81, 0x00]),
        (0x3fff, &[0x04, 0xff, 0x7f]),
        (0x4000, &[0x04, 0x81, 0x80, 0x00]),
        (0x1FFFFF, &[0x04, 0xff, 0xff, 0x7f]),
        (0x200000, &[0x04, 0x80, 0xc0, 0x80, 0x00]),
        (0x3FFFFF, &[0x04, 0x80, 0xff, 0xff, 0xff]),
        (0x400000, &[0x04, 0x81, 0x80, 0x80, 0x00]),
        (-1, &[0x04, 0xff, 0xff, 0xff, 0xff]),
        (42, &[0x04, 0x2a]),
        (-123, &[0x04, 0xff, 0xff, 0xff, 0x85]),
        (0x1a53f, &[0x04, 0x86, 0xca, 0x3f]),
        (-0x2a, &[0x04, 0xff, 0xff, 0xff, 0xd6]),
        (INTEGER_MIN, &[0x04, 0xc0, 0x80, 0x80, 0x00]),
        (INTEGER_MAX, &[0x04, 0xbf, 0xff, 0xff, 0xff]),
    ];
    for (i, bytes) in cases {
        exact(bytes, &Value::Integer(*i));
    }
    // Out of range: written as doubles (PyAMF's MIN_29B_INT - 1 and
    // MAX_29B_INT + 1 cases).
    assert_eq!(
        enc(&Value::Integer(INTEGER_MIN - 1)),
        [0x05, 0xc1, 0xb0, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]
    );
    assert_eq!(
        enc(&Value::Integer(INTEGER_MAX + 1)),
        [0x05, 0x41, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]
    );
    // PyAMF's string cases: empty, ASCII, and a reference to "hello".
    exact(&[0x06, 0x01], &s(""));
    exact(&[0x06, 0x0b, b'h', b'e', b'l', b'l', b'o'], &s("hello"));
    exact(&[0x06, 0x0d, 0xc6, 0x92, 0xc3, 0xb8, 0xc3, 0xb8], &s("ƒøø"));
}

#[test]
fn arrays_and_string_references() {
    exact(vector!("amf3-empty-array.bin"), &dense(vec![]));
    exact(
        vector!("amf3-primitive-array.bin"),
        &dense((1..=5).map(Value::Integer).collect()),
    );
    exact(
        vector!("amf3-empty-array-ref.bin"),
        &dense(vec![
            dense(vec![]),
            dense(vec![]),
            reference(0x09, 1),
            reference(0x09, 2),
        ]),
    );
    exact(
        vector!("amf3-associative-array.bin"),
        &Value::Array(Array {
            assoc: props([("2", s("bar3")), ("foo", s("bar")), ("asdf", s("fdsa"))]),
            dense: vec![s("bar"), s("bar1"), s("bar2")],
        }),
    );
    exact(
        vector!("amf3-string-ref.bin"),
        &dense(vec![
            s("foo"),
            s("str"),
            s("foo"),
            s("str"),
            s("foo"),
            obj("", [], Some(props([("str", s("foo"))]))),
        ]),
    );
    exact(
        vector!("amf3-empty-string-ref.bin"),
        &dense(vec![s(""), s("")]),
    );
    exact(
        vector!("amf3-encoded-string-ref.bin"),
        &dense(vec![s("this is a テスト"), s("this is a テスト")]),
    );
    exact(
        vector!("amf3-complex-encoded-string-array.bin"),
        &dense(vec![
            Value::Integer(5),
            s("Shift テスト"),
            s("UTF テスト"),
            Value::Integer(5),
        ]),
    );
    let xml = Value::Xml(String::from("<parent><child prop=\"test\"/></parent>"));
    exact(
        vector!("amf3-xml-ref.bin"),
        &dense(vec![xml, reference(0x0B, 1)]),
    );
    let bytes = Value::ByteArray(b"ASDF".to_vec());
    exact(
        vector!("amf3-byte-array-ref.bin"),
        &dense(vec![bytes, reference(0x0C, 1)]),
    );
    exact(
        vector!("amf3-date-ref.bin"),
        &dense(vec![Value::Date(0.0), reference(0x08, 1)]),
    );
}

#[test]
fn objects_traits_and_object_references() {
    exact(
        vector!("amf3-hash.bin"),
        &obj(
            "",
            [],
            Some(props([("foo", s("bar")), ("answer", Value::Integer(42))])),
        ),
    );
    exact(
        vector!("amf3-dynamic-object.bin"),
        &obj(
            "",
            [],
            Some(props([
                ("property_one", s("foo")),
                ("another_public_property", s("a_public_value")),
                ("nil_property", Value::Null),
            ])),
        ),
    );
    let typed = |foo: &str| {
        obj(
            "org.amf.ASClass",
            [("foo", s(foo)), ("baz", Value::Null)],
            None,
        )
    };
    exact(vector!("amf3-typed-object.bin"), &typed("bar"));
    // Two objects of one class: the second uses a traits reference.
    exact(
        vector!("amf3-trait-ref.bin"),
        &dense(vec![typed("foo"), typed("bar")]),
    );
    let foo_bar = obj("", [], Some(props([("foo", s("bar"))])));
    exact(
        vector!("amf3-object-ref.bin"),
        &dense(vec![
            dense(vec![foo_bar.clone(), foo_bar.clone()]),
            s("bar"),
            dense(vec![reference(0x0A, 2), reference(0x0A, 3)]),
        ]),
    );
    // An object graph with cycles (child.parent is the parent).
    let graph = dec(vector!("amf3-graph-member.bin")).unwrap();
    assert_eq!(enc(&graph), vector!("amf3-graph-member.bin"));
    assert_eq!(
        resolve(&graph, &Limits::default()),
        Err(DecodeError::CyclicReference(0))
    );
    // Mixed array: 13 dense elements, objects sharing traits and
    // referring to each other.
    let mixed = dec(vector!("amf3-mixed-array.bin")).unwrap();
    assert_eq!(enc(&mixed), vector!("amf3-mixed-array.bin"));
    let Value::Array(a) = resolve(&mixed, &Limits::default()).unwrap() else {
        panic!("not an array")
    };
    assert_eq!(a.dense.len(), 13);
    // As PyAMF reads it: element 4 is [e0, e1, e2] by reference, element
    // 12 is element 2 again.
    assert_eq!(a.dense[4], dense(a.dense[..3].to_vec()));
    assert_eq!(a.dense[12], a.dense[2]);
    assert_eq!(
        a.dense[2],
        obj("", [], Some(props([("foo_three", Value::Integer(42))])))
    );
}

#[test]
fn vectors_and_dictionaries() {
    exact(
        vector!("amf3-vector-int.bin"),
        &Value::VectorInt(Vector {
            fixed: false,
            items: vec![4, -20, 12],
        }),
    );
    exact(
        vector!("amf3-vector-uint.bin"),
        &Value::VectorUint(Vector {
            fixed: false,
            items: vec![4, 20, 12],
        }),
    );
    exact(
        vector!("amf3-vector-double.bin"),
        &Value::VectorDouble(Vector {
            fixed: false,
            items: vec![4.3, -20.6],
        }),
    );
    let typed = |foo: Value| {
        obj(
            "org.amf.ASClass",
            [("foo", foo), ("baz", Value::Null)],
            None,
        )
    };
    exact(
        vector!("amf3-vector-object.bin"),
        &Value::VectorObject {
            fixed: false,
            type_name: String::from("org.amf.ASClass"),
            items: vec![typed(s("foo")), typed(s("bar")), typed(s("baz"))],
        },
    );
    exact(
        vector!("amf3-dictionary.bin"),
        &Value::Dictionary {
            weak_keys: false,
            entries: vec![(s("bar"), s("asdf1")), (typed(s("baz")), s("asdf2"))],
        },
    );
    exact(
        vector!("amf3-empty-dictionary.bin"),
        &Value::Dictionary {
            weak_keys: false,
            entries: vec![],
        },
    );
}

/// Flex's ArrayCollection: externalizable, its body one array.
#[test]
fn array_collections() {
    let collection = |items: Vec<Value>| Value::Externalizable {
        class_name: String::from("flex.messaging.io.ArrayCollection"),
        body: alloc::boxed::Box::new(dense(items)),
    };
    exact(
        vector!("amf3-array-collection.bin"),
        &collection(vec![s("foo"), s("bar")]),
    );
    // Two collections (the second by traits reference) and a reference to
    // the second; the second holds typed objects sharing traits.
    let v = dec(vector!("amf3-complex-array-collection.bin")).unwrap();
    assert_eq!(enc(&v), vector!("amf3-complex-array-collection.bin"));
    let Value::Array(a) = resolve(&v, &Limits::default()).unwrap() else {
        panic!("not an array")
    };
    assert_eq!(a.dense.len(), 3);
    assert_eq!(a.dense[0], collection(vec![s("foo"), s("bar")]));
    assert_eq!(a.dense[2], a.dense[1]);
    let typed = |foo: &str| {
        obj(
            "org.amf.ASClass",
            [("foo", s(foo)), ("baz", Value::Null)],
            None,
        )
    };
    assert_eq!(a.dense[1], collection(vec![typed("bar"), typed("asdf")]));
    // For JSON clients a collection is its array; in the shared model it
    // stays AMF3.
    assert_eq!(to_json(&a.dense[0]), serde_json::json!(["foo", "bar"]));
    assert!(matches!(to_amf0(&a.dense[0]), amf0::Value::Avmplus(_)));
}

#[test]
fn malformed_vectors_are_typed_errors() {
    for file in [
        dec(vector!("amf3-empty.bin")),
        dec(vector!("amf3-u29-partial.bin")),
        dec(vector!("amf3-string-partial.bin")),
        dec(vector!("amf3-double-partial.bin")),
        dec(vector!("amf3-date-partial.bin")),
        dec(vector!("amf3-xml-partial.bin")),
        dec(vector!("amf3-vector-partial.bin")),
        dec(vector!("amf3-vector-int-partial.bin")),
        dec(vector!("amf3-vector-uint-partial.bin")),
        dec(vector!("amf3-dictionary-partial.bin")),
    ] {
        assert_eq!(file, Err(DecodeError::Truncated));
    }
    assert_eq!(
        dec(vector!("amf3-unknown-marker.bin")),
        Err(DecodeError::UnknownMarker(0x7b))
    );
    assert_eq!(
        dec(vector!("amf3-bad-object-ref.bin")),
        Err(DecodeError::BadObjectReference(10))
    );
    assert_eq!(
        dec(vector!("amf3-bad-string-ref.bin")),
        Err(DecodeError::BadStringReference(8))
    );
    assert_eq!(
        dec(vector!("amf3-bad-trait-ref.bin")),
        Err(DecodeError::BadTraitsReference(4))
    );
    let external = |name: &str| {
        Err(DecodeError::Externalizable {
            class_name: String::from(name),
        })
    };
    assert_eq!(
        dec(vector!("amf3-externalizable.bin")),
        external("ExternalizableTest")
    );
    // An externalizable class whose body is not one value.
    assert_eq!(
        dec(&[0x0A, 0x07, 0x07, b'a', b'.', b'B', 0x04, 0x01]),
        external("a.B")
    );
    // Invalid UTF-8 in a string, a key and XML.
    assert_eq!(dec(&[0x06, 0x03, 0xFF]), Err(DecodeError::InvalidUtf8));
    assert_eq!(
        dec(&[0x0A, 0x0B, 0x01, 0x03, 0xFF, 0x01, 0x01]),
        Err(DecodeError::InvalidUtf8)
    );
    assert_eq!(dec(&[0x0B, 0x03, 0xC0]), Err(DecodeError::InvalidUtf8));
}

#[test]
fn failed_decode_leaves_input_alone() {
    let bytes = [0x06, 0x07, b'a'];
    let mut input = &bytes[..];
    assert_eq!(
        decode(&mut input, &Limits::default()),
        Err(DecodeError::Truncated)
    );
    assert_eq!(input, &bytes[..]);
    // A decode stops after one value.
    let bytes = [0x04, 0x01, 0x04, 0x02];
    let mut input = &bytes[..];
    assert_eq!(
        decode(&mut input, &Limits::default()),
        Ok(Value::Integer(1))
    );
    assert_eq!(input, &[0x04, 0x02]);
}

#[test]
fn counts_are_checked_before_allocating() {
    let l = Limits::default();
    let huge = [0xBF, 0xFF, 0xFF, 0xFF]; // 2^29 - 1: count 2^28 - 1
    for marker in [0x06, 0x07, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11] {
        let mut bytes = vec![marker];
        bytes.extend_from_slice(&huge);
        bytes.extend_from_slice(&[0x01, 0x01, 0x01]);
        let mut input = &bytes[..];
        assert_eq!(
            decode(&mut input, &l),
            Err(DecodeError::Truncated),
            "marker {marker:#04x}"
        );
    }
    // An object announcing 2^24 sealed members.
    assert_eq!(
        dec(&[0x0A, 0xBF, 0xFF, 0xFF, 0xF3, 0x01]),
        Err(DecodeError::Truncated)
    );
}

#[test]
fn shares_amf0_bounds() {
    let l = Limits {
        amf0_max_depth: 2,
        amf0_max_values: 4,
        ..Limits::default()
    };
    let d = |bytes: &[u8]| {
        let mut input = bytes;
        decode(&mut input, &l)
    };
    // [[1]] is depth 2, three values.
    assert!(d(&[0x09, 0x03, 0x01, 0x09, 0x03, 0x01, 0x04, 0x01]).is_ok());
    assert_eq!(
        d(&[0x09, 0x03, 0x01, 0x09, 0x03, 0x01, 0x09, 0x01, 0x01]),
        Err(DecodeError::TooDeep { max: 2 })
    );
    // Five integers.
    assert_eq!(
        d(&[0x09, 0x09, 0x01, 0x04, 1, 0x04, 2, 0x04, 3, 0x04, 4]),
        Err(DecodeError::TooManyValues { max: 4 })
    );
    // Inline strings are string-table entries: they count too.
    assert_eq!(
        d(&[0x0A, 0x0B, 0x01, 0x03, b'a', 0x01, 0x03, b'b', 0x01, 0x01]),
        Err(DecodeError::TooManyValues { max: 4 })
    );
}

#[test]
fn string_references_are_bounded_by_max_message() {
    // A 100-byte string then 20 references to it: 2100 string bytes, past
    // twice the 1000-byte message limit.
    let mut bytes = vec![0x09, 0x2B, 0x01, 0x06, 0x81, 0x49];
    bytes.extend_from_slice(&[b'x'; 100]);
    for _ in 0..20 {
        bytes.extend_from_slice(&[0x06, 0x00]);
    }
    let small = Limits {
        max_message: 1000,
        ..Limits::default()
    };
    let mut input = &bytes[..];
    assert_eq!(
        decode(&mut input, &small),
        Err(DecodeError::TooLarge { max: 2000 })
    );
    let enough = Limits {
        max_message: 1050,
        ..Limits::default()
    };
    assert!(decode(&mut &bytes[..], &enough).is_ok());
    let Value::Array(a) = dec(&bytes).unwrap() else {
        panic!("not an array")
    };
    assert_eq!(a.dense.len(), 21);
    assert_eq!(enc(&Value::Array(a)), bytes);
}

#[test]
fn resolve_is_bounded() {
    // [o, [r1, r1], [r4, r4], [r6, r6], …]: each level doubles the copies.
    let mut dense_items = vec![obj("", [], Some(props([("k", s("v"))])))];
    let mut target = 1;
    for level in 0..12u32 {
        dense_items.push(dense(vec![
            reference(0x0A, target),
            reference(0x0A, target),
        ]));
        target = 2 + level;
    }
    let v = dense(dense_items);
    let l = Limits {
        amf0_max_depth: 64,
        ..Limits::default()
    };
    assert_eq!(
        resolve(&v, &l),
        Err(DecodeError::TooManyValues {
            max: l.amf0_max_values
        })
    );
    // A reference outside the table.
    assert_eq!(
        resolve(&dense(vec![reference(0x09, 5)]), &l),
        Err(DecodeError::BadObjectReference(5))
    );
}

#[test]
fn display_says_what_went_wrong() {
    use alloc::string::ToString;
    assert_eq!(
        DecodeError::Externalizable {
            class_name: String::from("flex.messaging.io.ArrayCollection")
        }
        .to_string(),
        "externalizable AMF3 object of class \"flex.messaging.io.ArrayCollection\" is not supported (its body is written by class-specific code)"
    );
    assert_eq!(
        DecodeError::BadTraitsReference(4).to_string(),
        "AMF3 traits reference #4 is not in the traits table"
    );
}

/// The shared model: what each AMF3 type becomes in AMF0 and comes back as.
#[test]
fn amf0_mapping() {
    let l = Limits::default();
    let date = Value::Date(1_700_000_000_000.0);
    let cases: Vec<(Value, amf0::Value, Value)> = vec![
        (Value::Undefined, amf0::Value::Undefined, Value::Undefined),
        (Value::Null, amf0::Value::Null, Value::Null),
        (
            Value::Boolean(true),
            amf0::Value::Boolean(true),
            Value::Boolean(true),
        ),
        (
            Value::Integer(-7),
            amf0::Value::Number(-7.0),
            Value::Integer(-7),
        ),
        (
            Value::Double(2.5),
            amf0::Value::Number(2.5),
            Value::Double(2.5),
        ),
        // Narrowing: a whole double comes back as an integer.
        (
            Value::Double(3.0),
            amf0::Value::Number(3.0),
            Value::Integer(3),
        ),
        (
            Value::Double(-0.0),
            amf0::Value::Number(-0.0),
            Value::Double(-0.0),
        ),
        (s("hello"), amf0::Value::string("hello"), s("hello")),
        (
            date.clone(),
            amf0::Value::Date {
                millis: 1_700_000_000_000.0,
                time_zone: 0,
            },
            date,
        ),
        (
            Value::XmlDocument(String::from("<a/>")),
            amf0::Value::XmlDocument(String::from("<a/>")),
            Value::XmlDocument(String::from("<a/>")),
        ),
        (
            dense(vec![Value::Integer(1), s("x")]),
            amf0::Value::StrictArray(vec![amf0::Value::Number(1.0), amf0::Value::string("x")]),
            dense(vec![Value::Integer(1), s("x")]),
        ),
        (
            obj("", [], Some(props([("a", Value::Boolean(false))]))),
            amf0::Value::object([("a", amf0::Value::Boolean(false))]),
            obj("", [], Some(props([("a", Value::Boolean(false))]))),
        ),
    ];
    for (amf3, amf0, back) in cases {
        assert_eq!(to_amf0(&amf3), amf0, "{amf3:?}");
        assert_eq!(from_amf0(&amf0, &l), Ok(back), "{amf0:?}");
    }
    // AMF3-only values stay AMF3, whole, and come back unchanged.
    for only in [
        Value::ByteArray(vec![0, 1, 2, 255]),
        Value::Xml(String::from("<a/>")),
        Value::VectorInt(Vector {
            fixed: true,
            items: vec![1, -1],
        }),
        Value::VectorDouble(Vector {
            fixed: false,
            items: vec![0.5],
        }),
        Value::Dictionary {
            weak_keys: false,
            entries: vec![(Value::Integer(1), s("one"))],
        },
        obj("com.example.Point", [("x", Value::Integer(1))], None),
        Value::Array(Array {
            assoc: props([("name", s("n"))]),
            dense: vec![Value::Integer(0)],
        }),
    ] {
        let amf0 = to_amf0(&only);
        assert_eq!(amf0, amf0::Value::Avmplus(Bytes::from(enc(&only))));
        assert_eq!(from_amf0(&amf0, &l).as_ref(), Ok(&only));
        assert_eq!(wrap_avmplus(&amf0, &l), amf0);
    }
    // AMF0-only values: typed objects become sealed members of the class,
    // ECMA arrays associative arrays, references null.
    assert_eq!(
        from_amf0(
            &amf0::Value::TypedObject {
                class_name: String::from("P"),
                properties: vec![(String::from("x"), amf0::Value::Number(1.0))],
            },
            &l
        ),
        Ok(obj("P", [("x", Value::Integer(1))], None))
    );
    assert_eq!(
        from_amf0(
            &amf0::Value::EcmaArray {
                count: 0,
                properties: vec![(String::from("k"), amf0::Value::Null)],
            },
            &l
        ),
        Ok(Value::Array(Array {
            assoc: props([("k", Value::Null)]),
            dense: vec![]
        }))
    );
    assert_eq!(from_amf0(&amf0::Value::Reference(0), &l), Ok(Value::Null));
}

#[test]
fn unwrap_and_wrap_avmplus() {
    let l = Limits::default();
    // An object holding an AVM+ object holding a byte array.
    let inner = obj(
        "",
        [],
        Some(props([
            ("n", Value::Integer(5)),
            ("b", Value::ByteArray(vec![7])),
        ])),
    );
    let mut v = amf0::Value::object([("x", amf0::Value::Avmplus(Bytes::from(enc(&inner))))]);
    unwrap_avmplus(&mut v, &l).unwrap();
    assert_eq!(
        v,
        amf0::Value::object([(
            "x",
            amf0::Value::object([
                ("n", amf0::Value::Number(5.0)),
                ("b", to_amf0(&Value::ByteArray(vec![7]))),
            ])
        )])
    );
    // Back to one AVM+ value: the same bytes the client sent inside.
    let wrapped = wrap_avmplus(&v, &l);
    let amf0::Value::Avmplus(bytes) = &wrapped else {
        panic!("not AVM+")
    };
    assert_eq!(
        dec(bytes).unwrap(),
        obj("", [], Some(props([("x", inner)])))
    );
    // A cyclic value stays AVM+; an undecodable one is an error.
    let graph = Bytes::from_static(vector!("amf3-graph-member.bin"));
    let mut cyclic = amf0::Value::Avmplus(graph.clone());
    unwrap_avmplus(&mut cyclic, &l).unwrap();
    assert_eq!(cyclic, amf0::Value::Avmplus(graph));
    let mut bad = amf0::Value::Avmplus(Bytes::from_static(&[0x06, 0x03, 0xFF]));
    assert_eq!(unwrap_avmplus(&mut bad, &l), Err(DecodeError::InvalidUtf8));
}

#[test]
fn json_mapping() {
    use serde_json::json;
    let v = obj(
        "com.example.P",
        [("i", Value::Integer(3))],
        Some(props([
            ("d", Value::Double(0.5)),
            ("t", Value::Date(86_400_000.0)),
            ("b", Value::ByteArray(b"hi".to_vec())),
            (
                "v",
                Value::VectorUint(Vector {
                    fixed: false,
                    items: vec![1, 2],
                }),
            ),
            (
                "m",
                Value::Array(Array {
                    assoc: props([("k", Value::Null)]),
                    dense: vec![Value::Boolean(true)],
                }),
            ),
            (
                "dict",
                Value::Dictionary {
                    weak_keys: false,
                    entries: vec![(Value::Integer(1), s("one"))],
                },
            ),
            (
                "odict",
                Value::Dictionary {
                    weak_keys: true,
                    entries: vec![(dense(vec![]), s("x"))],
                },
            ),
        ])),
    );
    assert_eq!(
        to_json(&v),
        json!({
            "i": 3, "d": 0.5, "t": {"$date": 86_400_000}, "b": {"$bytes": "aGk="},
            "v": [1, 2], "m": {"0": true, "k": null}, "dict": {"1": "one"},
            "odict": [[[], "x"]]
        })
    );
    assert_eq!(
        avmplus_to_json(&enc(&Value::ByteArray(vec![1, 2, 3])), &Limits::default()),
        json!({"$bytes": "AQID"})
    );
    let map = json!({"$bytes": "AQID"});
    assert_eq!(
        bytes_from_json(map.as_object().unwrap()),
        Some(to_amf0(&Value::ByteArray(vec![1, 2, 3])))
    );
    let not = json!({"$bytes": "AQID", "x": 1});
    assert_eq!(bytes_from_json(not.as_object().unwrap()), None);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = String> {
        // A small alphabet, so names repeat and make string references.
        prop_oneof![Just(String::new()), "[a-c]{1,3}", "[é✓x]{1,2}"]
    }

    fn key() -> impl Strategy<Value = String> + Clone {
        "[a-d]{1,2}"
    }

    fn members() -> impl Strategy<Value = Properties> {
        // Keys are unique within one member list (sealed names are).
        prop::collection::btree_map(key(), leaf(), 0..4).prop_map(|m| m.into_iter().collect())
    }

    fn leaf() -> BoxedStrategy<Value> {
        prop_oneof![
            Just(Value::Undefined),
            Just(Value::Null),
            any::<bool>().prop_map(Value::Boolean),
            (INTEGER_MIN..=INTEGER_MAX).prop_map(Value::Integer),
            any::<f64>()
                .prop_filter("NaN != NaN", |d| !d.is_nan())
                .prop_map(Value::Double),
            name().prop_map(Value::String),
            name().prop_map(Value::XmlDocument),
            name().prop_map(Value::Xml),
            (-1e15f64..1e15).prop_map(Value::Date),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(Value::ByteArray),
            (any::<bool>(), prop::collection::vec(any::<i32>(), 0..4))
                .prop_map(|(fixed, items)| Value::VectorInt(Vector { fixed, items })),
            (any::<bool>(), prop::collection::vec(any::<u32>(), 0..4))
                .prop_map(|(fixed, items)| Value::VectorUint(Vector { fixed, items })),
            (any::<bool>(), prop::collection::vec(-1e9f64..1e9, 0..4))
                .prop_map(|(fixed, items)| Value::VectorDouble(Vector { fixed, items })),
        ]
        .boxed()
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 48, 4, |inner| {
            let pairs = prop::collection::vec((key(), inner.clone()), 0..4);
            prop_oneof![
                (pairs.clone(), prop::collection::vec(inner.clone(), 0..4))
                    .prop_map(|(assoc, dense)| Value::Array(Array { assoc, dense })),
                (
                    prop_oneof![Just(String::new()), "[A-C]"],
                    members(),
                    prop::option::of(pairs.clone())
                )
                    .prop_map(|(class_name, sealed, dynamic)| {
                        Value::Object(Object {
                            class_name,
                            sealed,
                            dynamic,
                        })
                    }),
                (
                    any::<bool>(),
                    name(),
                    prop::collection::vec(inner.clone(), 0..4)
                )
                    .prop_map(|(fixed, type_name, items)| Value::VectorObject {
                        fixed,
                        type_name,
                        items
                    }),
                (
                    any::<bool>(),
                    prop::collection::vec((inner.clone(), inner), 0..3)
                )
                    .prop_map(|(weak_keys, entries)| Value::Dictionary { weak_keys, entries }),
            ]
        })
    }

    /// The marker a value is written with.
    fn marker(v: &Value) -> u8 {
        enc(v).first().copied().unwrap_or(0)
    }

    proptest! {
        #[test]
        fn decode_encode_round_trip(v in value()) {
            let bytes = enc(&v);
            prop_assert_eq!(dec(&bytes), Ok(v.clone()));
            // And the bytes are canonical: re-encoding gives them again.
            prop_assert_eq!(enc(&dec(&bytes).unwrap()), bytes);
        }

        /// The value twice in an array, the second time by object
        /// reference (when it is complex; string and traits references
        /// come from the repeated names).
        #[test]
        fn round_trip_with_object_references(v in value()) {
            let again = if v.is_complex() {
                Value::Reference { marker: marker(&v), index: 1 }
            } else {
                v.clone()
            };
            let w = dense(vec![v.clone(), again]);
            let bytes = enc(&w);
            prop_assert_eq!(dec(&bytes), Ok(w.clone()));
            let l = Limits { amf0_max_depth: 64, ..Limits::default() };
            let Ok(Value::Array(resolved)) = resolve(&w, &l) else {
                return Err(TestCaseError::fail("resolve failed"));
            };
            prop_assert_eq!(&resolved.dense[1], &v);
        }

        /// Through the shared model and back: the same value, except that
        /// whole doubles in the integer range come back as integers.
        #[test]
        fn amf0_round_trip(v in value()) {
            let l = Limits { amf0_max_depth: 64, ..Limits::default() };
            let back = from_amf0(&to_amf0(&v), &l).unwrap();
            prop_assert_eq!(narrow(&back), narrow(&v));
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut input = &bytes[..];
            if let Ok(v) = decode(&mut input, &Limits::default()) {
                let _ = resolve(&v, &Limits::default());
            }
        }
    }

    /// `v` with whole doubles in the integer range made integers (the
    /// documented narrowing of the shared model).
    fn narrow(v: &Value) -> Value {
        let p = |props: &Properties| -> Properties {
            props.iter().map(|(k, v)| (k.clone(), narrow(v))).collect()
        };
        match v {
            Value::Double(d) => match from_amf0(&amf0::Value::Number(*d), &Limits::default()) {
                Ok(n) => n,
                Err(_) => v.clone(),
            },
            Value::Array(a) => Value::Array(Array {
                assoc: p(&a.assoc),
                dense: a.dense.iter().map(narrow).collect(),
            }),
            Value::Object(o) => Value::Object(Object {
                class_name: o.class_name.clone(),
                sealed: p(&o.sealed),
                dynamic: o.dynamic.as_ref().map(p),
            }),
            _ => v.clone(),
        }
    }
}

#[test]
fn what_the_encoder_writes_decodes_under_the_limits_its_input_did() {
    // The same 6-byte key inline twice in an array's associative part (a
    // crafted input: Flash writes the second as a reference). The encoder
    // writes the second as a reference; under the old copy-only budget
    // that cost 6 bytes the input never paid, and the encoding of a value
    // decoded with `max_message` 4 or 5 was refused with the same limits
    // (found by the `so_message` fuzz target).
    let mut bytes = vec![0x09, 0x01];
    for value in [b'1', b'2'] {
        bytes.extend_from_slice(&[0x0D]);
        bytes.extend_from_slice(b"keykey");
        bytes.extend_from_slice(&[0x06, 0x03, value]);
    }
    bytes.push(0x01);
    for max_message in 0..64 {
        let limits = Limits {
            max_message,
            ..Limits::default()
        };
        let Ok(v) = decode(&mut &bytes[..], &limits) else {
            continue;
        };
        let written = enc(&v);
        assert!(written.len() < bytes.len(), "the repeat became a reference");
        assert_eq!(
            decode(&mut &written[..], &limits),
            Ok(v),
            "max_message {max_message}"
        );
    }
    assert!(decode(&mut &bytes[..], &Limits::default()).is_ok());
}
