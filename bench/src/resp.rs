//! Just enough RESP (the Redis protocol) for pub/sub: encoding commands and
//! parsing replies and pushed messages in place, without allocating.

use std::fmt;

/// Appends the command `args` (an array of bulk strings) to `out`.
pub fn command(args: &[&[u8]], out: &mut Vec<u8>) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.push(b'$');
        out.extend_from_slice(arg.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// A scalar reply, borrowed from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// `+OK`.
    Simple(&'a [u8]),
    /// `-ERR …`.
    Error(&'a [u8]),
    /// `:42`.
    Int(i64),
    /// `$n` … (`None`: the null bulk string).
    Bulk(Option<&'a [u8]>),
}

/// Most items in an array reply this parser takes (pub/sub pushes have 3
/// or 4).
pub const MAX_ARRAY: usize = 4;

/// One whole reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// A scalar.
    Item(Item<'a>),
    /// An array of up to [`MAX_ARRAY`] scalars (`len` of them used).
    Array {
        /// The items.
        items: [Item<'a>; MAX_ARRAY],
        /// How many.
        len: usize,
    },
}

impl<'a> Reply<'a> {
    /// The array's items (empty for a scalar).
    pub fn items(&self) -> &[Item<'a>] {
        match self {
            Reply::Array { items, len } => items.get(..*len).unwrap_or_default(),
            Reply::Item(_) => &[],
        }
    }

    /// For a pushed `message`: its payload.
    pub fn message_payload(&self) -> Option<&'a [u8]> {
        match self.items() {
            [Item::Bulk(Some(b"message")), _, Item::Bulk(Some(payload))] => Some(payload),
            _ => None,
        }
    }
}

/// Input the parser cannot take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RespError {
    /// An unknown type byte.
    BadType(u8),
    /// A length or integer that does not parse.
    BadNumber,
    /// Nested or too long arrays.
    Unsupported,
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::BadType(b) => write!(f, "unknown RESP type byte 0x{b:02x}"),
            RespError::BadNumber => f.write_str("malformed RESP number"),
            RespError::Unsupported => {
                write!(f, "RESP array nested or longer than {MAX_ARRAY}")
            }
        }
    }
}

impl std::error::Error for RespError {}

/// The line at the start of `buf` (without CRLF) and the bytes it takes.
fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    Some((buf.get(..end)?, end + 2))
}

fn number(digits: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(RespError::BadNumber)
}

fn item(buf: &[u8]) -> Result<Option<(Item<'_>, usize)>, RespError> {
    let Some((&kind, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let Some((text, n)) = line(rest) else {
        return Ok(None);
    };
    let used = 1 + n;
    Ok(Some(match kind {
        b'+' => (Item::Simple(text), used),
        b'-' => (Item::Error(text), used),
        b':' => (Item::Int(number(text)?), used),
        b'$' => {
            let len = number(text)?;
            if len < 0 {
                return Ok(Some((Item::Bulk(None), used)));
            }
            let len = usize::try_from(len).map_err(|_| RespError::BadNumber)?;
            let Some(body) = buf.get(used..used + len) else {
                return Ok(None);
            };
            if buf.len() < used + len + 2 {
                return Ok(None);
            }
            (Item::Bulk(Some(body)), used + len + 2)
        }
        b'*' => return Err(RespError::Unsupported),
        other => return Err(RespError::BadType(other)),
    }))
}

/// Parses one reply from the start of `buf`: the reply and the bytes it
/// took, or `None` if `buf` does not hold a whole one yet.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply<'_>, usize)>, RespError> {
    if buf.first() != Some(&b'*') {
        return Ok(item(buf)?.map(|(i, n)| (Reply::Item(i), n)));
    }
    let Some((text, mut used)) = line(buf.get(1..).unwrap_or_default()) else {
        return Ok(None);
    };
    used += 1;
    let len = usize::try_from(number(text)?).map_err(|_| RespError::Unsupported)?;
    if len > MAX_ARRAY {
        return Err(RespError::Unsupported);
    }
    let mut items = [Item::Bulk(None); MAX_ARRAY];
    for slot in items.iter_mut().take(len) {
        let Some((it, n)) = item(buf.get(used..).unwrap_or_default())? else {
            return Ok(None);
        };
        *slot = it;
        used += n;
    }
    Ok(Some((Reply::Array { items, len }, used)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        command(&[b"PUBLISH", b"ch", b"hello"], &mut out);
        assert_eq!(out, b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$5\r\nhello\r\n");
    }

    #[test]
    fn parses_pushes_and_replies() {
        let push = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n:1\r\n";
        let (reply, n) = parse(push).unwrap().unwrap();
        assert_eq!(reply.message_payload(), Some(&b"hello"[..]));
        assert_eq!(n, push.len() - 4);
        let (reply, n) = parse(&push[n..]).unwrap().unwrap();
        assert_eq!(reply, Reply::Item(Item::Int(1)));
        assert_eq!(n, 4);
        // Every strict prefix is incomplete, never an error.
        for cut in 0..push.len() - 4 {
            assert_eq!(parse(&push[..cut]).unwrap(), None, "{cut}");
        }
        let sub = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
        let (reply, _) = parse(sub).unwrap().unwrap();
        assert_eq!(reply.items()[2], Item::Int(1));
        assert_eq!(reply.message_payload(), None);
        assert_eq!(
            parse(b"-ERR x\r\n").unwrap().unwrap().0,
            Reply::Item(Item::Error(b"ERR x"))
        );
        assert_eq!(
            parse(b"$-1\r\n").unwrap().unwrap().0,
            Reply::Item(Item::Bulk(None))
        );
        assert_eq!(parse(b"?\r\n"), Err(RespError::BadType(b'?')));
        assert_eq!(parse(b"*9\r\n"), Err(RespError::Unsupported));
    }
}
