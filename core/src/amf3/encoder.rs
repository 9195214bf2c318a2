//! [`Value`] → bytes. Infallible; see [`encode`](super::encode) for the
//! (never hit by decoded values) cases where a field is too small.

use super::{INTEGER_MAX, INTEGER_MIN, Object, Properties, Value};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Largest length or count a U29 header can carry (2^28 − 1).
const MAX_LEN: usize = (1 << 28) - 1;

/// Appends the U29 encoding of `v` (only its low 29 bits are used).
pub(crate) fn u29(v: u32, out: &mut Vec<u8>) {
    let v = v & 0x1FFF_FFFF;
    // Each `as u8` below keeps the low 8 bits on purpose.
    if v < 0x80 {
        out.push(v as u8);
    } else if v < 0x4000 {
        out.extend_from_slice(&[((v >> 7) as u8) | 0x80, (v & 0x7F) as u8]);
    } else if v < 0x20_0000 {
        out.extend_from_slice(&[
            ((v >> 14) as u8) | 0x80,
            (((v >> 7) & 0x7F) as u8) | 0x80,
            (v & 0x7F) as u8,
        ]);
    } else {
        out.extend_from_slice(&[
            (((v >> 22) & 0x7F) as u8) | 0x80,
            (((v >> 15) & 0x7F) as u8) | 0x80,
            (((v >> 8) & 0x7F) as u8) | 0x80,
            v as u8,
        ]);
    }
}

/// An inline header for `len` items: `len << 1 | 1` (`len` is clamped by
/// the callers to [`MAX_LEN`]).
fn inline(len: usize, out: &mut Vec<u8>) {
    let len = u32::try_from(len.min(MAX_LEN)).unwrap_or(0);
    u29((len << 1) | 1, out);
}

/// The longest prefix of `s` of at most [`MAX_LEN`] bytes that ends on a
/// char boundary.
fn fit(s: &str) -> &str {
    s.get(..s.floor_char_boundary(MAX_LEN)).unwrap_or_default()
}

/// The traits of an object, as the traits table compares them: class
/// name, sealed member names, dynamic, externalizable.
type TraitsKey<'v> = (&'v str, Vec<&'v str>, bool, bool);

/// One encode call's string and traits tables. Object references are not
/// made up: [`Value::Reference`]s are written as they are.
pub(crate) struct Encoder<'v, 'o> {
    out: &'o mut Vec<u8>,
    strings: BTreeMap<&'v str, u32>,
    traits: BTreeMap<TraitsKey<'v>, u32>,
    /// Whether repeated strings and traits are written as references
    /// (else every one is written inline).
    references: bool,
}

impl<'v, 'o> Encoder<'v, 'o> {
    pub(crate) fn new(out: &'o mut Vec<u8>) -> Self {
        Encoder {
            out,
            strings: BTreeMap::new(),
            traits: BTreeMap::new(),
            references: true,
        }
    }

    /// An encoder that writes every string and traits inline: its output
    /// refers to no table entry (object references aside, which are
    /// written as they are), so it reads the same whatever the reader's
    /// tables already hold.
    pub(crate) fn without_references(out: &'o mut Vec<u8>) -> Self {
        Encoder {
            references: false,
            ..Encoder::new(out)
        }
    }

    /// `UTF-8-vr`: a reference if this non-empty string was written before.
    fn string(&mut self, s: &'v str) {
        let s = fit(s);
        if !self.references {
            inline(s.len(), self.out);
            self.out.extend_from_slice(s.as_bytes());
            return;
        }
        if let Some(&i) = self.strings.get(s) {
            u29(i << 1, self.out);
            return;
        }
        if !s.is_empty() {
            let next = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
            self.strings.insert(s, next);
        }
        inline(s.len(), self.out);
        self.out.extend_from_slice(s.as_bytes());
    }

    fn text(&mut self, marker: u8, s: &str) {
        let s = fit(s);
        self.out.push(marker);
        inline(s.len(), self.out);
        self.out.extend_from_slice(s.as_bytes());
    }

    fn members(&mut self, props: &'v Properties) {
        for (k, v) in props {
            // An empty name would end the list; such members cannot be
            // written (ActionScript has none).
            if k.is_empty() {
                continue;
            }
            self.string(k);
            self.value(v);
        }
        self.out.push(0x01);
    }

    pub(crate) fn value(&mut self, v: &'v Value) {
        match v {
            Value::Undefined => self.out.push(0x00),
            Value::Null => self.out.push(0x01),
            Value::Boolean(false) => self.out.push(0x02),
            Value::Boolean(true) => self.out.push(0x03),
            Value::Integer(i) if (INTEGER_MIN..=INTEGER_MAX).contains(i) => {
                self.out.push(0x04);
                u29(i.cast_unsigned(), self.out);
            }
            Value::Integer(i) => {
                self.out.push(0x05);
                self.out.extend_from_slice(&f64::from(*i).to_be_bytes());
            }
            Value::Double(d) => {
                self.out.push(0x05);
                self.out.extend_from_slice(&d.to_be_bytes());
            }
            Value::String(s) => {
                self.out.push(0x06);
                self.string(s);
            }
            Value::XmlDocument(s) => self.text(0x07, s),
            Value::Date(ms) => {
                self.out.extend_from_slice(&[0x08, 0x01]);
                self.out.extend_from_slice(&ms.to_be_bytes());
            }
            Value::Array(a) => {
                self.out.push(0x09);
                let dense = a.dense.len().min(MAX_LEN);
                inline(dense, self.out);
                self.members(&a.assoc);
                for item in a.dense.iter().take(dense) {
                    self.value(item);
                }
            }
            Value::Object(o) => {
                self.out.push(0x0A);
                self.object(o);
            }
            Value::Externalizable { class_name, body } => {
                self.out.push(0x0A);
                let key = (class_name.as_str(), Vec::new(), false, true);
                let known = self.traits.get(&key).filter(|_| self.references);
                if let Some(&i) = known {
                    u29((i << 2) | 0b01, self.out);
                } else {
                    // U29O-traits-ext: 0b0111, then the class name.
                    u29(0b0111, self.out);
                    self.string(class_name);
                    let next = u32::try_from(self.traits.len()).unwrap_or(u32::MAX);
                    self.traits.insert(key, next);
                }
                self.value(body);
            }
            Value::Xml(s) => self.text(0x0B, s),
            Value::ByteArray(b) => {
                self.out.push(0x0C);
                let len = b.len().min(MAX_LEN);
                inline(len, self.out);
                self.out.extend_from_slice(b.get(..len).unwrap_or_default());
            }
            Value::VectorInt(vec) => {
                self.vector_head(0x0D, vec.items.len(), vec.fixed);
                for i in vec.items.iter().take(MAX_LEN) {
                    self.out.extend_from_slice(&i.to_be_bytes());
                }
            }
            Value::VectorUint(vec) => {
                self.vector_head(0x0E, vec.items.len(), vec.fixed);
                for i in vec.items.iter().take(MAX_LEN) {
                    self.out.extend_from_slice(&i.to_be_bytes());
                }
            }
            Value::VectorDouble(vec) => {
                self.vector_head(0x0F, vec.items.len(), vec.fixed);
                for d in vec.items.iter().take(MAX_LEN) {
                    self.out.extend_from_slice(&d.to_be_bytes());
                }
            }
            Value::VectorObject {
                fixed,
                type_name,
                items,
            } => {
                self.vector_head(0x10, items.len(), *fixed);
                self.string(type_name);
                for item in items.iter().take(MAX_LEN) {
                    self.value(item);
                }
            }
            Value::Dictionary { weak_keys, entries } => {
                self.vector_head(0x11, entries.len(), *weak_keys);
                for (k, v) in entries.iter().take(MAX_LEN) {
                    self.value(k);
                    self.value(v);
                }
            }
            Value::Reference { marker, index } => {
                let marker = if (0x07..=0x11).contains(marker) {
                    *marker
                } else {
                    0x0A
                };
                self.out.push(marker);
                u29(index << 1, self.out);
            }
        }
    }

    /// Marker, `count << 1 | 1`, and the fixed-length (or weak-keys) byte.
    fn vector_head(&mut self, marker: u8, count: usize, flag: bool) {
        self.out.push(marker);
        inline(count, self.out);
        self.out.push(u8::from(flag));
    }

    fn object(&mut self, o: &'v Object) {
        let names: Vec<&'v str> = o.sealed.iter().map(|(k, _)| k.as_str()).collect();
        let sealed = names.len().min(MAX_LEN >> 2);
        let key = (o.class_name.as_str(), names, o.dynamic.is_some(), false);
        let known = self.traits.get(&key).filter(|_| self.references);
        if let Some(&i) = known {
            // U29O-traits-ref: index << 2 | 0b01.
            u29((i << 2) | 0b01, self.out);
        } else {
            // U29O-traits: count << 4 | dynamic << 3 | 0b011.
            let count = u32::try_from(sealed).unwrap_or(0);
            let dynamic = u32::from(o.dynamic.is_some());
            u29((count << 4) | (dynamic << 3) | 0b011, self.out);
            self.string(&o.class_name);
            for (name, _) in o.sealed.iter().take(sealed) {
                self.string(name);
            }
            let next = u32::try_from(self.traits.len()).unwrap_or(u32::MAX);
            self.traits.insert(key, next);
        }
        for (_, v) in o.sealed.iter().take(sealed) {
            self.value(v);
        }
        if let Some(dynamic) = &o.dynamic {
            self.members(dynamic);
        }
    }
}
