//! A bounds-checked cursor over peer bytes, shared by the AMF0 decoder and
//! the AMF3 skipper. Every read either returns the bytes or
//! [`Amf0Error::Truncated`]; nothing here can panic.

use super::Amf0Error;

/// Forward-only view of the bytes not yet consumed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// Bytes not yet consumed.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next byte, without consuming it.
    pub(crate) fn peek(&self) -> Result<u8, Amf0Error> {
        self.rest.first().copied().ok_or(Amf0Error::Truncated)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Amf0Error> {
        let (&b, rest) = self.rest.split_first().ok_or(Amf0Error::Truncated)?;
        self.rest = rest;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Amf0Error> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(Amf0Error::Truncated)?;
        self.rest = rest;
        Ok(*head)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Amf0Error> {
        self.array().map(u16::from_be_bytes)
    }

    pub(crate) fn i16(&mut self) -> Result<i16, Amf0Error> {
        self.array().map(i16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Amf0Error> {
        self.array().map(u32::from_be_bytes)
    }

    pub(crate) fn f64(&mut self) -> Result<f64, Amf0Error> {
        self.array().map(f64::from_be_bytes)
    }

    /// The next `len` bytes. `len` comes from the peer, so it is checked
    /// against what is actually there before anything else happens.
    pub(crate) fn bytes(&mut self, len: usize) -> Result<&'a [u8], Amf0Error> {
        let (head, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(Amf0Error::Truncated)?;
        self.rest = rest;
        Ok(head)
    }

    /// Skips `len` bytes (checked like [`Reader::bytes`]).
    pub(crate) fn skip(&mut self, len: usize) -> Result<(), Amf0Error> {
        self.bytes(len).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_and_stops_at_end() {
        let mut r = Reader::new(&[0x01, 0x02, 0xFF, 0xFE, 0x00, 0x00, 0x00, 0x07, 0xAA]);
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(r.i16(), Ok(-2));
        assert_eq!(r.u32(), Ok(7));
        assert_eq!(r.remaining(), 1);
        assert_eq!(r.u16(), Err(Amf0Error::Truncated));
        // A failed read consumes nothing.
        assert_eq!(r.peek(), Ok(0xAA));
        assert_eq!(r.bytes(2), Err(Amf0Error::Truncated));
        assert_eq!(r.bytes(usize::MAX), Err(Amf0Error::Truncated));
        assert_eq!(r.bytes(1), Ok(&[0xAA][..]));
        assert_eq!(r.u8(), Err(Amf0Error::Truncated));
        assert_eq!(r.f64(), Err(Amf0Error::Truncated));
    }
}
