//! A bounded AMF3 *skipper*: finds where the one AMF3 value after an AMF0
//! AVM+ switch (0x11) ends, without building it.
//!
//! The AMF0 decoder keeps the value as bytes
//! ([`Value::Avmplus`](super::Value::Avmplus); [`crate::amf3`] decodes
//! them), but AMF0 has no length prefix for it, so the value must be walked
//! to be delimited. Nothing is interpreted or validated beyond what delimiting
//! needs (string bytes are not checked for UTF-8; reference indices are not
//! resolved), with one exception: objects that use a *traits reference* need
//! the referenced traits' member count, so a traits table is kept.
//!
//! Which traits a traits reference may name depends on the caller: with
//! [`Bounds::new`] each AVM+ value starts with an empty traits table (a
//! reference to traits of an earlier AVM+ value is
//! [`Amf3Error::BadTraitsReference`]); with [`Bounds::sharing_amf3`] (the
//! [`BodyDecoder`](super::BodyDecoder) of an AMF3-typed message body) the
//! table lives as long as the bounds, as py3amf and Red5 keep one set of
//! tables for all the AVM+ values of a message ("AMF3 reference tables" in
//! docs/architecture.md).
//!
//! Bounds are shared with the AMF0 decoder: every AMF3 value counts against
//! `amf0_max_values`, and arrays, objects, object vectors and dictionaries
//! nest against `amf0_max_depth`. Typed vectors of int/uint/double are
//! skipped in one step and count as one value.

use super::decoder::Bounds;
use super::reader::Reader;
use super::{Amf0Error, Amf3Error};

/// Skips one AMF3 value found at AMF0 nesting `depth`.
pub(crate) fn skip_value(
    r: &mut Reader<'_>,
    b: &mut Bounds,
    depth: usize,
) -> Result<(), Amf0Error> {
    if !b.share_amf3 {
        b.amf3_traits.clear();
    }
    Skipper { r, b }.value(depth)
}

/// What the skipper must remember about a traits definition to skip a later
/// object that refers to it. Externalizable traits enter the table only
/// for the classes whose body is one value
/// ([`crate::amf3::EXTERNALIZABLE_ONE_VALUE`]); others are rejected.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Traits {
    sealed: u32,
    dynamic: bool,
    externalizable: bool,
}

struct Skipper<'r, 'a> {
    r: &'r mut Reader<'a>,
    /// Holds the traits table too ([`Bounds::amf3_traits`]).
    b: &'r mut Bounds,
}

/// The low bit of a U29 header: 1 = an inline value follows, 0 = a
/// reference to an earlier one (no payload).
fn is_inline(header: u32) -> bool {
    header & 1 == 1
}

impl Skipper<'_, '_> {
    /// AMF3's variable-length 29-bit integer: 1–4 bytes, 7 bits each in the
    /// first three (high bit = more follows), 8 bits in the fourth.
    fn u29(&mut self) -> Result<u32, Amf0Error> {
        let mut v: u32 = 0;
        for _ in 0..3 {
            let byte = self.r.u8()?;
            v = (v << 7) | u32::from(byte & 0x7F);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        let byte = self.r.u8()?;
        Ok((v << 8) | u32::from(byte))
    }

    /// A count that must be met by at least `min_bytes` bytes per item.
    fn items(&self, count: u32, min_bytes: usize) -> Result<usize, Amf0Error> {
        let count = usize::try_from(count).map_err(|_| Amf0Error::Truncated)?;
        let needed = count.checked_mul(min_bytes).ok_or(Amf0Error::Truncated)?;
        if needed > self.r.remaining() {
            return Err(Amf0Error::Truncated);
        }
        Ok(count)
    }

    /// A `U29 ref-or-length` followed by that many bytes (string, XML,
    /// byte array). Returns whether it was the inline empty string, which
    /// terminates dynamic members and associative array parts.
    fn inline_bytes(&mut self) -> Result<bool, Amf0Error> {
        let header = self.u29()?;
        if !is_inline(header) {
            return Ok(false);
        }
        let len = self.items(header >> 1, 1)?;
        self.r.skip(len)?;
        Ok(len == 0)
    }

    fn value(&mut self, depth: usize) -> Result<(), Amf0Error> {
        let marker = self.r.u8()?;
        if marker > 0x11 {
            return Err(Amf3Error::UnknownMarker(marker).into());
        }
        self.b.count_value()?;
        match marker {
            // undefined, null, false, true
            0x00..=0x03 => Ok(()),
            // integer
            0x04 => self.u29().map(|_| ()),
            // double
            0x05 => self.r.skip(8),
            // string, XML document, XML, byte array
            0x06 | 0x07 | 0x0B | 0x0C => self.inline_bytes().map(|_| ()),
            // date: header (low bit only) then a double
            0x08 => {
                if is_inline(self.u29()?) {
                    self.r.skip(8)?;
                }
                Ok(())
            }
            0x09 => self.array(depth),
            0x0A => self.object(depth),
            // vector of int, uint: 4 bytes each; of double: 8 bytes each
            0x0D | 0x0E => self.fixed_vector(4),
            0x0F => self.fixed_vector(8),
            0x10 => self.object_vector(depth),
            0x11 => self.dictionary(depth),
            _ => Err(Amf3Error::UnknownMarker(marker).into()),
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), Amf0Error> {
        let header = self.u29()?;
        if !is_inline(header) {
            return Ok(());
        }
        let inner = self.b.enter(depth)?;
        // Associative part: name/value pairs up to the empty name.
        while !self.inline_bytes()? {
            self.value(inner)?;
        }
        let dense = self.items(header >> 1, 1)?;
        for _ in 0..dense {
            self.value(inner)?;
        }
        Ok(())
    }

    fn object(&mut self, depth: usize) -> Result<(), Amf0Error> {
        let header = self.u29()?;
        if !is_inline(header) {
            return Ok(());
        }
        let inner = self.b.enter(depth)?;
        let traits = if header & 0b10 == 0 {
            let index = header >> 2;
            let slot = usize::try_from(index)
                .ok()
                .and_then(|i| self.b.amf3_traits.get(i));
            *slot.ok_or(Amf3Error::BadTraitsReference(index))?
        } else if header & 0b100 != 0 {
            // Only an inline class name can be checked: the skipper keeps
            // no string table (Flash writes a class name inline the first
            // time it is used).
            let h = self.u29()?;
            let known = if is_inline(h) {
                let len = self.items(h >> 1, 1)?;
                let name = self.r.bytes(len)?;
                crate::amf3::EXTERNALIZABLE_ONE_VALUE
                    .iter()
                    .any(|k| k.as_bytes() == name)
            } else {
                false
            };
            if !known {
                return Err(Amf3Error::Externalizable.into());
            }
            let traits = Traits {
                sealed: 0,
                dynamic: false,
                externalizable: true,
            };
            self.b.amf3_traits.push(traits);
            traits
        } else {
            let traits = Traits {
                sealed: header >> 4,
                dynamic: header & 0b1000 != 0,
                externalizable: false,
            };
            self.inline_bytes()?; // class name
            for _ in 0..self.items(traits.sealed, 1)? {
                self.inline_bytes()?; // sealed member names
            }
            // Registered before the members: they may refer to it.
            self.b.amf3_traits.push(traits);
            traits
        };
        if traits.externalizable {
            return self.value(inner);
        }
        for _ in 0..self.items(traits.sealed, 1)? {
            self.value(inner)?;
        }
        if traits.dynamic {
            while !self.inline_bytes()? {
                self.value(inner)?;
            }
        }
        Ok(())
    }

    fn fixed_vector(&mut self, item_size: usize) -> Result<(), Amf0Error> {
        let header = self.u29()?;
        if !is_inline(header) {
            return Ok(());
        }
        self.r.u8()?; // fixed-length flag
        let count = self.items(header >> 1, item_size)?;
        // `items` checked count * item_size fits in the input.
        self.r.skip(count.saturating_mul(item_size))
    }

    fn object_vector(&mut self, depth: usize) -> Result<(), Amf0Error> {
        let header = self.u29()?;
        if !is_inline(header) {
            return Ok(());
        }
        let inner = self.b.enter(depth)?;
        self.r.u8()?; // fixed-length flag
        self.inline_bytes()?; // element type name
        for _ in 0..self.items(header >> 1, 1)? {
            self.value(inner)?;
        }
        Ok(())
    }

    fn dictionary(&mut self, depth: usize) -> Result<(), Amf0Error> {
        let header = self.u29()?;
        if !is_inline(header) {
            return Ok(());
        }
        let inner = self.b.enter(depth)?;
        self.r.u8()?; // weak-keys flag
        for _ in 0..self.items(header >> 1, 2)? {
            self.value(inner)?; // key
            self.value(inner)?; // value
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    /// Skips one AMF3 value; returns how many bytes it took.
    fn skip(bytes: &[u8], limits: &Limits) -> Result<usize, Amf0Error> {
        let mut r = Reader::new(bytes);
        let mut b = Bounds::new(limits);
        skip_value(&mut r, &mut b, 0)?;
        Ok(bytes.len() - r.remaining())
    }

    fn ok(bytes: &[u8]) {
        let mut with_tail = bytes.to_vec();
        with_tail.push(0xEE); // the skipper must stop before this
        assert_eq!(
            skip(&with_tail, &Limits::default()),
            Ok(bytes.len()),
            "{bytes:02x?}"
        );
        for cut in 0..bytes.len() {
            assert_eq!(
                skip(&bytes[..cut], &Limits::default()),
                Err(Amf0Error::Truncated),
                "cut at {cut} of {bytes:02x?}"
            );
        }
    }

    #[test]
    fn u29_forms() {
        ok(&[0x04, 0x00]);
        ok(&[0x04, 0x7F]);
        ok(&[0x04, 0x81, 0x00]);
        ok(&[0x04, 0xFF, 0xFF, 0x7F]);
        ok(&[0x04, 0xFF, 0xFF, 0xFF, 0xFF]);
    }

    #[test]
    fn scalars_and_byte_strings() {
        for m in 0x00..=0x03 {
            ok(&[m]);
        }
        ok(&[0x05, 0x40, 0x09, 0x21, 0xFB, 0x54, 0x44, 0x2D, 0x18]);
        ok(&[0x06, 0x07, b'a', b'b', b'c']); // "abc"
        ok(&[0x06, 0x02]); // string reference #1
        ok(&[0x07, 0x07, b'<', b'a', b'>']);
        ok(&[0x0B, 0x01]);
        ok(&[0x0C, 0x05, 0x01, 0x02]);
        ok(&[0x08, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
        ok(&[0x08, 0x00]); // date reference
    }

    #[test]
    fn arrays_objects_vectors_dictionaries() {
        // [1, "a"] with no associative part.
        ok(&[0x09, 0x05, 0x01, 0x04, 0x01, 0x06, 0x03, b'a']);
        // {k: null} associative, no dense part.
        ok(&[0x09, 0x01, 0x03, b'k', 0x01, 0x01]);
        // Anonymous dynamic object {x: 1}: traits 0b1011, class "".
        ok(&[0x0A, 0x0B, 0x01, 0x03, b'x', 0x04, 0x01, 0x01]);
        // Sealed class "P" with member "a" = true, then an array of two
        // objects, the second reusing the first's traits (reference #0).
        ok(&[0x0A, 0x13, 0x03, b'P', 0x03, b'a', 0x03]);
        ok(&[
            0x09, 0x05, 0x01, // array of 2
            0x0A, 0x13, 0x03, b'P', 0x03, b'a', 0x03, // P{a:true}
            0x0A, 0x01, 0x02, // P{a:false} by traits reference 0
        ]);
        ok(&[0x0D, 0x05, 0x00, 0, 0, 0, 1, 0, 0, 0, 2]);
        ok(&[0x0E, 0x03, 0x01, 0, 0, 0, 1]);
        ok(&[0x0F, 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
        ok(&[0x10, 0x05, 0x00, 0x01, 0x04, 0x05, 0x01]); // <*>[5, null]
        ok(&[0x11, 0x03, 0x00, 0x06, 0x03, b'k', 0x04, 0x01]);
        // Object reference.
        ok(&[0x0A, 0x00]);
    }

    #[test]
    fn known_externalizable_classes_are_one_value() {
        // ArrayCollection of ["a"], then a second one by traits reference.
        let mut ac = alloc::vec![0x09, 0x05, 0x01, 0x0A, 0x07, 0x43];
        ac.extend_from_slice(b"flex.messaging.io.ArrayCollection");
        ac.extend_from_slice(&[0x09, 0x03, 0x01, 0x06, 0x03, b'a']);
        ac.extend_from_slice(&[0x0A, 0x01, 0x09, 0x01, 0x01]);
        ok(&ac);
        // The class name as a string reference cannot be checked.
        assert_eq!(
            skip(
                &[0x09, 0x05, 0x01, 0x06, 0x03, b'x', 0x0A, 0x07, 0x00, 0x01],
                &Limits::default()
            ),
            Err(Amf3Error::Externalizable.into())
        );
    }

    #[test]
    fn rejects_what_cannot_be_delimited() {
        let l = Limits::default();
        assert_eq!(
            skip(&[0x0A, 0x07, 0x03, b'C'], &l),
            Err(Amf3Error::Externalizable.into())
        );
        assert_eq!(
            skip(&[0x0A, 0x05], &l),
            Err(Amf3Error::BadTraitsReference(1).into())
        );
        assert_eq!(
            skip(&[0x12], &l),
            Err(Amf3Error::UnknownMarker(0x12).into())
        );
        // Huge counts with tiny input.
        assert_eq!(
            skip(&[0x09, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], &l),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(
            skip(&[0x0F, 0xFF, 0xFF, 0xFF, 0xFF, 0x00], &l),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(
            skip(&[0x11, 0xFF, 0xFF, 0xFF, 0xFF, 0x00], &l),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(
            skip(&[0x06, 0xFF, 0xFF, 0xFF, 0xFF], &l),
            Err(Amf0Error::Truncated)
        );
    }

    #[test]
    fn shares_amf0_bounds() {
        let l = Limits {
            amf0_max_depth: 2,
            amf0_max_values: 3,
            ..Limits::default()
        };
        // [[1]] is depth 2, three values.
        assert_eq!(
            skip(&[0x09, 0x03, 0x01, 0x09, 0x03, 0x01, 0x04, 0x01], &l),
            Ok(8)
        );
        // [[[]]] is depth 3.
        assert_eq!(
            skip(&[0x09, 0x03, 0x01, 0x09, 0x03, 0x01, 0x09, 0x01, 0x01], &l),
            Err(Amf0Error::TooDeep { max: 2 })
        );
        // [1, 2, 3] is four values.
        assert_eq!(
            skip(&[0x09, 0x07, 0x01, 0x04, 0x01, 0x04, 0x02, 0x04, 0x03], &l),
            Err(Amf0Error::TooManyValues { max: 3 })
        );
    }
}
