//! A bounds-checked cursor for big-endian reading, shared by the message
//! parsers.
//!
//! Every read names what it was reading so a short buffer becomes a
//! [`MessageError::Truncated`] that says where it ended.

use super::MessageError;
use alloc::string::String;
use alloc::vec::Vec;

/// A cursor over peer bytes that never reads past the end.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], MessageError> {
        let (head, rest) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or(MessageError::Truncated { what })?;
        self.buf = rest;
        Ok(*head)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, MessageError> {
        Ok(u8::from_be_bytes(self.array::<1>(what)?))
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, MessageError> {
        Ok(u16::from_be_bytes(self.array::<2>(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, MessageError> {
        Ok(u32::from_be_bytes(self.array::<4>(what)?))
    }

    pub(crate) fn take(
        &mut self,
        len: usize,
        what: &'static str,
    ) -> Result<&'a [u8], MessageError> {
        let (head, rest) = self
            .buf
            .split_at_checked(len)
            .ok_or(MessageError::Truncated { what })?;
        self.buf = rest;
        Ok(head)
    }

    /// A u16-length-prefixed UTF-8 string without an AMF0 marker (shared
    /// object names, keys, status code and level).
    pub(crate) fn short_string(&mut self, what: &'static str) -> Result<String, MessageError> {
        self.short_str(what).map(String::from)
    }

    /// [`short_string`](Self::short_string), borrowed.
    pub(crate) fn short_str(&mut self, what: &'static str) -> Result<&'a str, MessageError> {
        let len = usize::from(self.u16(what)?);
        let bytes = self.take(len, what)?;
        core::str::from_utf8(bytes).map_err(|_| MessageError::InvalidUtf8 { what })
    }
}

/// Writes a u16-length-prefixed UTF-8 string. Longer strings cannot be
/// represented; they are cut at the last character boundary that fits so the
/// output stays well-formed (callers never produce such names in practice).
pub(crate) fn put_short_string(out: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(usize::from(u16::MAX));
    while !s.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    let bytes = s.as_bytes().get(..end).unwrap_or_default();
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}
