//! [`Value`] → bytes. Infallible: values that do not fit a field are
//! adjusted as documented on [`encode`](super::encode).

use super::{Properties, Value};
use alloc::vec::Vec;

pub(crate) fn value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Number(n) => {
            out.push(0x00);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Value::Boolean(b) => out.extend_from_slice(&[0x01, u8::from(*b)]),
        Value::String(s) => {
            if s.len() <= usize::from(u16::MAX) {
                out.push(0x02);
                short_str(s, out);
            } else {
                out.push(0x0C);
                long_str(s, out);
            }
        }
        Value::Object(props) => {
            out.push(0x03);
            properties(props, out);
        }
        Value::Null => out.push(0x05),
        Value::Undefined => out.push(0x06),
        Value::Reference(i) => {
            out.push(0x07);
            out.extend_from_slice(&i.to_be_bytes());
        }
        Value::EcmaArray {
            count,
            properties: props,
        } => {
            out.push(0x08);
            out.extend_from_slice(&count.to_be_bytes());
            properties(props, out);
        }
        Value::StrictArray(items) => {
            out.push(0x0A);
            // More than 2^32-1 items cannot be described; write as many as
            // the count can say.
            let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&count.to_be_bytes());
            for item in items
                .iter()
                .take(usize::try_from(count).unwrap_or(usize::MAX))
            {
                value(item, out);
            }
        }
        Value::Date { millis, time_zone } => {
            out.push(0x0B);
            out.extend_from_slice(&millis.to_be_bytes());
            out.extend_from_slice(&time_zone.to_be_bytes());
        }
        Value::LongString(s) => {
            out.push(0x0C);
            long_str(s, out);
        }
        Value::Unsupported => out.push(0x0D),
        Value::XmlDocument(s) => {
            out.push(0x0F);
            long_str(s, out);
        }
        Value::TypedObject {
            class_name,
            properties: props,
        } => {
            out.push(0x10);
            short_str(class_name, out);
            properties(props, out);
        }
        Value::Avmplus(bytes) => {
            out.push(0x11);
            out.extend_from_slice(bytes);
        }
    }
}

fn properties(props: &Properties, out: &mut Vec<u8>) {
    for (key, v) in props {
        short_str(key, out);
        value(v, out);
    }
    out.extend_from_slice(&[0x00, 0x00, 0x09]);
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char
/// boundary.
fn truncated(s: &str, max: usize) -> &str {
    s.get(..s.floor_char_boundary(max)).unwrap_or_default()
}

/// u16 length + UTF-8, truncated to 65535 bytes at a char boundary.
fn short_str(s: &str, out: &mut Vec<u8>) {
    let s = truncated(s, usize::from(u16::MAX));
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// u32 length + UTF-8, truncated to 2^32-1 bytes at a char boundary.
fn long_str(s: &str, out: &mut Vec<u8>) {
    let max = usize::try_from(u32::MAX).unwrap_or(usize::MAX);
    let s = truncated(s, max);
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn truncation_keeps_whole_chars() {
        assert_eq!(truncated("héllo", 2), "h");
        assert_eq!(truncated("héllo", 3), "hé");
        assert_eq!(truncated("héllo", 100), "héllo");
    }

    #[test]
    fn oversized_key_is_cut_at_a_char_boundary() {
        // 65534 ASCII bytes then a 2-byte char straddling the 65535 limit.
        let mut key = "k".repeat(65534);
        key.push('é');
        let mut out = Vec::new();
        value(&Value::Object(alloc::vec![(key, Value::Null)]), &mut out);
        assert_eq!(&out[..3], &[0x03, 0xFF, 0xFE]);
        assert_eq!(out.len(), 1 + 2 + 65534 + 1 + 3);
    }

    #[test]
    fn oversized_string_uses_long_string_marker() {
        let s = String::from("x").repeat(65536);
        let mut out = Vec::new();
        value(&Value::String(s), &mut out);
        assert_eq!(&out[..5], &[0x0C, 0x00, 0x01, 0x00, 0x00]);
        assert_eq!(out.len(), 5 + 65536);

        let mut out = Vec::new();
        value(&Value::String("x".repeat(65535)), &mut out);
        assert_eq!(&out[..3], &[0x02, 0xFF, 0xFF]);
    }
}
