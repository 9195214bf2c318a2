//! Bytes → [`Value`], bounded by [`Limits`].
//!
//! Recursive descent; recursion depth is bounded by `amf0_max_depth`, so the
//! stack a peer can make us use is bounded by configuration, not by input.
//! The three reference tables live for one [`decode`](super::decode) call,
//! or for one message body ([`unwrap_body`](super::unwrap_body)).

use super::{Array, DecodeError, EXTERNALIZABLE_ONE_VALUE, Object, Properties, Value, Vector};
use crate::Limits;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

/// A traits table entry, borrowed from the input.
#[derive(Clone, Debug)]
struct Traits<'a> {
    class_name: &'a str,
    sealed: Vec<&'a str>,
    dynamic: bool,
    /// Externalizable (of one of [`EXTERNALIZABLE_ONE_VALUE`]): the body is
    /// one value.
    externalizable: bool,
}

/// One decode call's cursor, reference tables and budgets.
pub(crate) struct Decoder<'a> {
    rest: &'a [u8],
    /// Inline non-empty strings, in order (each counted as a value).
    strings: Vec<&'a str>,
    /// Inline traits, in order (each belongs to a counted object).
    traits: Vec<Traits<'a>>,
    /// Complex values started so far: the object table's length.
    objects: u32,
    max_depth: usize,
    max_values: usize,
    values_left: usize,
    max_string_bytes: usize,
    string_bytes_left: usize,
}

/// The low bit of a U29 header: 1 = an inline value follows, 0 = a
/// reference (the rest of the header is its index).
fn is_inline(header: u32) -> bool {
    header & 1 == 1
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(input: &'a [u8], limits: &Limits) -> Self {
        // Inline and referenced string bytes share one budget of twice
        // the message limit: an input within the limit holds at most that
        // much inline, so it may copy at least as much as before by
        // reference, and the encoder turning a repeated inline string
        // into a reference costs the same — what tern writes, it reads
        // back under the same limits (fuzz/regressions/so_message).
        let max_string_bytes = usize::try_from(limits.max_message)
            .unwrap_or(usize::MAX)
            .saturating_mul(2);
        Decoder {
            rest: input,
            strings: Vec::new(),
            traits: Vec::new(),
            objects: 0,
            max_depth: limits.amf0_max_depth,
            max_values: limits.amf0_max_values,
            values_left: limits.amf0_max_values,
            max_string_bytes,
            string_bytes_left: max_string_bytes,
        }
    }

    /// Bytes not yet consumed.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Goes on with `input`, keeping the reference tables and budgets: the
    /// next AVM+ value of the same message body.
    pub(crate) fn set_input(&mut self, input: &'a [u8]) {
        self.rest = input;
    }

    /// The object table's length so far.
    pub(crate) fn objects(&self) -> u32 {
        self.objects
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.rest.split_first().ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(*head)
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let (head, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(head)
    }

    /// AMF3's variable-length 29-bit unsigned integer: 1–4 bytes, 7 bits
    /// each in the first three (high bit = more follows), 8 in the fourth.
    fn u29(&mut self) -> Result<u32, DecodeError> {
        let mut v: u32 = 0;
        for _ in 0..3 {
            let byte = self.u8()?;
            v = (v << 7) | u32::from(byte & 0x7F);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        let byte = self.u8()?;
        Ok((v << 8) | u32::from(byte))
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        self.array().map(f64::from_be_bytes)
    }

    fn count_value(&mut self) -> Result<(), DecodeError> {
        self.values_left = self
            .values_left
            .checked_sub(1)
            .ok_or(DecodeError::TooManyValues {
                max: self.max_values,
            })?;
        Ok(())
    }

    /// The depth of the children of a container found at `depth`.
    fn enter(&self, depth: usize) -> Result<usize, DecodeError> {
        let inner = depth.saturating_add(1);
        if inner > self.max_depth {
            return Err(DecodeError::TooDeep {
                max: self.max_depth,
            });
        }
        Ok(inner)
    }

    /// A peer-announced count of items taking at least `min_bytes` each
    /// (and, when `values` is set, one value each): checked against the
    /// input and the value budget before anything is allocated for it.
    fn items(&self, count: u32, min_bytes: usize, values: bool) -> Result<usize, DecodeError> {
        let count = usize::try_from(count).map_err(|_| DecodeError::Truncated)?;
        let needed = count.checked_mul(min_bytes).ok_or(DecodeError::Truncated)?;
        if needed > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        if values && count > self.values_left {
            return Err(DecodeError::TooManyValues {
                max: self.max_values,
            });
        }
        Ok(count)
    }

    /// Charges `len` string bytes (inline or copied from a table entry)
    /// against the budget.
    fn charge_string_bytes(&mut self, len: usize) -> Result<(), DecodeError> {
        self.string_bytes_left =
            self.string_bytes_left
                .checked_sub(len)
                .ok_or(DecodeError::TooLarge {
                    max: self.max_string_bytes,
                })?;
        Ok(())
    }

    fn utf8(&mut self, len: usize) -> Result<&'a str, DecodeError> {
        core::str::from_utf8(self.bytes(len)?).map_err(|_| DecodeError::InvalidUtf8)
    }

    /// `UTF-8-vr`: an inline string (added to the string table unless
    /// empty) or a reference to one.
    fn string(&mut self) -> Result<&'a str, DecodeError> {
        let header = self.u29()?;
        let n = header >> 1;
        if !is_inline(header) {
            let s = *usize::try_from(n)
                .ok()
                .and_then(|i| self.strings.get(i))
                .ok_or(DecodeError::BadStringReference(n))?;
            self.charge_string_bytes(s.len())?;
            return Ok(s);
        }
        let len = self.items(n, 1, false)?;
        let s = self.utf8(len)?;
        if !s.is_empty() {
            self.count_value()?;
            self.charge_string_bytes(s.len())?;
            self.strings.push(s);
        }
        Ok(s)
    }

    /// A `U29O/A/D/X/B/V` header: `Ok(Err(reference))` for a reference
    /// (checked against the object table), else the header's upper bits
    /// with the new value registered in the object table.
    fn complex(&mut self, marker: u8) -> Result<Result<u32, Value>, DecodeError> {
        let header = self.u29()?;
        let n = header >> 1;
        if !is_inline(header) {
            return self.reference(marker, n).map(Err);
        }
        self.objects = self.objects.saturating_add(1);
        Ok(Ok(n))
    }

    fn reference(&self, marker: u8, index: u32) -> Result<Value, DecodeError> {
        if index >= self.objects {
            return Err(DecodeError::BadObjectReference(index));
        }
        Ok(Value::Reference { marker, index })
    }

    pub(crate) fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let marker = self.u8()?;
        if marker > 0x11 {
            return Err(DecodeError::UnknownMarker(marker));
        }
        self.count_value()?;
        let v = match marker {
            0x00 => Value::Undefined,
            0x01 => Value::Null,
            0x02 => Value::Boolean(false),
            0x03 => Value::Boolean(true),
            0x04 => {
                let raw = self.u29()?;
                // Sign-extend bit 28.
                let v = i32::try_from(raw).unwrap_or_default();
                Value::Integer(if raw & 0x1000_0000 != 0 {
                    v - 0x2000_0000
                } else {
                    v
                })
            }
            0x05 => Value::Double(self.f64()?),
            0x06 => Value::String(String::from(self.string()?)),
            0x07 | 0x0B => match self.complex(marker)? {
                Err(reference) => reference,
                Ok(len) => {
                    let len = self.items(len, 1, false)?;
                    let text = String::from(self.utf8(len)?);
                    if marker == 0x07 {
                        Value::XmlDocument(text)
                    } else {
                        Value::Xml(text)
                    }
                }
            },
            0x08 => match self.complex(marker)? {
                Err(reference) => reference,
                Ok(_) => Value::Date(self.f64()?),
            },
            0x09 => match self.complex(marker)? {
                Err(reference) => reference,
                Ok(dense) => self.array_body(dense, depth)?,
            },
            0x0A => self.object(depth)?,
            0x0C => match self.complex(marker)? {
                Err(reference) => reference,
                Ok(len) => {
                    let len = self.items(len, 1, false)?;
                    Value::ByteArray(self.bytes(len)?.to_vec())
                }
            },
            0x0D => match self.complex(marker)? {
                Err(reference) => reference,
                Ok(count) => {
                    let fixed = self.u8()? != 0;
                    let count = self.items(count, 4, false)?;
                    let mut items = Vec::with_capacity(count);
                    for _ in 0..count {
                        items.push(i32::from_be_bytes(self.array()?));
                    }
                    Value::VectorInt(Vector { fixed, items })
                }
            },
            0x0E => match self.complex(marker)? {
                Err(reference) => reference,
                Ok(count) => {
                    let fixed = self.u8()? != 0;
                    let count = self.items(count, 4, false)?;
                    let mut items = Vec::with_capacity(count);
                    for _ in 0..count {
                        items.push(u32::from_be_bytes(self.array()?));
                    }
                    Value::VectorUint(Vector { fixed, items })
                }
            },
            0x0F => match self.complex(marker)? {
                Err(reference) => reference,
                Ok(count) => {
                    let fixed = self.u8()? != 0;
                    let count = self.items(count, 8, false)?;
                    let mut items = Vec::with_capacity(count);
                    for _ in 0..count {
                        items.push(self.f64()?);
                    }
                    Value::VectorDouble(Vector { fixed, items })
                }
            },
            0x10 => match self.complex(marker)? {
                Err(reference) => reference,
                Ok(count) => {
                    let inner = self.enter(depth)?;
                    let fixed = self.u8()? != 0;
                    let type_name = String::from(self.string()?);
                    let count = self.items(count, 1, true)?;
                    let mut items = Vec::with_capacity(count);
                    for _ in 0..count {
                        items.push(self.value(inner)?);
                    }
                    Value::VectorObject {
                        fixed,
                        type_name,
                        items,
                    }
                }
            },
            // 0x11: the only marker left (> 0x11 was refused above).
            _ => match self.complex(marker)? {
                Err(reference) => reference,
                Ok(count) => {
                    let inner = self.enter(depth)?;
                    let weak_keys = self.u8()? != 0;
                    // Two values per entry.
                    let count = self.items(count, 2, false)?;
                    if count.saturating_mul(2) > self.values_left {
                        return Err(DecodeError::TooManyValues {
                            max: self.max_values,
                        });
                    }
                    let mut entries = Vec::with_capacity(count);
                    for _ in 0..count {
                        let key = self.value(inner)?;
                        let value = self.value(inner)?;
                        entries.push((key, value));
                    }
                    Value::Dictionary { weak_keys, entries }
                }
            },
        };
        Ok(v)
    }

    /// Name/value pairs up to the empty name.
    fn members(&mut self, depth: usize) -> Result<Properties, DecodeError> {
        let mut props = Properties::new();
        loop {
            let key = self.string()?;
            if key.is_empty() {
                return Ok(props);
            }
            let v = self.value(depth)?;
            props.push((String::from(key), v));
        }
    }

    fn array_body(&mut self, dense: u32, depth: usize) -> Result<Value, DecodeError> {
        let inner = self.enter(depth)?;
        let assoc = self.members(inner)?;
        let count = self.items(dense, 1, true)?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(self.value(inner)?);
        }
        Ok(Value::Array(Array {
            assoc,
            dense: items,
        }))
    }

    fn object(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let header = self.u29()?;
        if !is_inline(header) {
            return self.reference(0x0A, header >> 1);
        }
        let traits = if header & 0b10 == 0 {
            let index = header >> 2;
            let t = usize::try_from(index)
                .ok()
                .and_then(|i| self.traits.get(i))
                .ok_or(DecodeError::BadTraitsReference(index))?
                .clone();
            // The names are copied into this object's members.
            let names = t.sealed.iter().map(|n| n.len()).sum::<usize>();
            self.charge_string_bytes(names.saturating_add(t.class_name.len()))?;
            t
        } else if header & 0b100 != 0 {
            let class_name = self.string()?;
            if !EXTERNALIZABLE_ONE_VALUE.contains(&class_name) {
                return Err(DecodeError::Externalizable {
                    class_name: String::from(class_name),
                });
            }
            let traits = Traits {
                class_name,
                sealed: Vec::new(),
                dynamic: false,
                externalizable: true,
            };
            self.traits.push(traits.clone());
            traits
        } else {
            let class_name = self.string()?;
            let count = self.items(header >> 4, 1, true)?;
            let mut sealed = Vec::with_capacity(count);
            for _ in 0..count {
                sealed.push(self.string()?);
            }
            let traits = Traits {
                class_name,
                sealed,
                dynamic: header & 0b1000 != 0,
                externalizable: false,
            };
            self.traits.push(traits.clone());
            traits
        };
        // Registered before the members: they may refer to it.
        self.objects = self.objects.saturating_add(1);
        let inner = self.enter(depth)?;
        if traits.externalizable {
            let body = self.value(inner)?;
            return Ok(Value::Externalizable {
                class_name: String::from(traits.class_name),
                body: Box::new(body),
            });
        }
        if traits.sealed.len() > self.values_left {
            return Err(DecodeError::TooManyValues {
                max: self.max_values,
            });
        }
        let mut sealed = Properties::with_capacity(traits.sealed.len());
        for name in &traits.sealed {
            let v = self.value(inner)?;
            sealed.push((String::from(*name), v));
        }
        let dynamic = if traits.dynamic {
            Some(self.members(inner)?)
        } else {
            None
        };
        Ok(Value::Object(Object {
            class_name: String::from(traits.class_name),
            sealed,
            dynamic,
        }))
    }
}
