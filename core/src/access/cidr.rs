//! Address rules: lists of CIDR blocks (or `all`) that an address must match.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;

/// One address block, `10.0.0.0/8` or `::1/128` (a bare address is a
/// block of one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a rule did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CidrError {
    /// The address part is not an IPv4 or IPv6 address.
    BadAddress(String),
    /// The prefix length is not a number within the family's width.
    BadPrefix(String),
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::BadAddress(s) => write!(
                f,
                "{s:?} is not an address block (want \"all\", an address, or address/prefix)"
            ),
            CidrError::BadPrefix(s) => write!(
                f,
                "{s:?} has a bad prefix length (0..=32 for IPv4, 0..=128 for IPv6)"
            ),
        }
    }
}

impl Cidr {
    /// Parses `addr` or `addr/prefix`.
    pub fn parse(text: &str) -> Result<Cidr, CidrError> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| CidrError::BadAddress(String::from(text)))?;
        let width = match network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| CidrError::BadPrefix(String::from(text)))?,
        };
        Ok(Cidr { network, prefix })
    }

    /// True if `addr` lies in the block. An IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`, what a dual-stack socket reports) matches IPv4
    /// blocks as its IPv4 address.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => prefix_eq(
                u128::from(net.to_bits()) << 96,
                u128::from(a.to_bits()) << 96,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(a)) => prefix_eq(net.to_bits(), a.to_bits(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    a & mask == b & mask
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// An allow list: `["all"]` (the default) or address blocks. Checked
/// before any hook; an address outside every block is refused. A
/// connection without a known address (an in-memory test pipe) matches
/// only `all`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrRules {
    /// `None`: everybody.
    blocks: Option<Vec<Cidr>>,
}

impl AddrRules {
    /// Everybody.
    pub const ALL: AddrRules = AddrRules { blocks: None };

    /// Parses a config list: `"all"` anywhere in it allows everybody.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<AddrRules, CidrError> {
        let mut blocks = Vec::with_capacity(items.len());
        for item in items {
            let item = item.as_ref().trim();
            if item.eq_ignore_ascii_case("all") {
                return Ok(AddrRules::ALL);
            }
            blocks.push(Cidr::parse(item)?);
        }
        Ok(AddrRules {
            blocks: Some(blocks),
        })
    }

    /// True if `addr` may pass.
    pub fn allows(&self, addr: Option<IpAddr>) -> bool {
        match (&self.blocks, addr) {
            (None, _) => true,
            (Some(blocks), Some(addr)) => blocks.iter().any(|b| b.contains(addr)),
            (Some(_), None) => false,
        }
    }

    /// True if everybody may pass.
    pub fn is_all(&self) -> bool {
        self.blocks.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn blocks_match_by_prefix() {
        let rules =
            AddrRules::parse(&["127.0.0.1/32", "10.0.0.0/8", "::1/128", "2001:db8::/32"]).unwrap();
        assert!(rules.allows(ip("127.0.0.1")));
        assert!(!rules.allows(ip("127.0.0.2")));
        assert!(rules.allows(ip("10.200.3.4")));
        assert!(!rules.allows(ip("11.0.0.1")));
        assert!(rules.allows(ip("::1")));
        assert!(rules.allows(ip("2001:db8:ffff::1")));
        assert!(!rules.allows(ip("2001:db9::1")));
        // A dual-stack socket's view of an IPv4 client.
        assert!(rules.allows(ip("::ffff:10.1.2.3")));
        assert!(!rules.allows(None));
    }

    #[test]
    fn all_and_edge_prefixes() {
        assert!(AddrRules::parse(&["10.0.0.0/8", "all"]).unwrap().is_all());
        assert!(AddrRules::default().allows(None));
        let any4 = AddrRules::parse(&["0.0.0.0/0"]).unwrap();
        assert!(any4.allows(ip("203.0.113.9")));
        assert!(!any4.allows(ip("::2")));
        assert!(
            AddrRules::parse(&["192.168.1.7"])
                .unwrap()
                .allows(ip("192.168.1.7"))
        );
        let empty = AddrRules::parse::<&str>(&[]).unwrap();
        assert!(!empty.allows(ip("127.0.0.1")));
    }

    #[test]
    fn bad_rules_are_errors() {
        assert!(matches!(
            Cidr::parse("10.0.0.0/33"),
            Err(CidrError::BadPrefix(_))
        ));
        assert!(matches!(
            Cidr::parse("::/129"),
            Err(CidrError::BadPrefix(_))
        ));
        assert!(matches!(
            Cidr::parse("localhost"),
            Err(CidrError::BadAddress(_))
        ));
        assert!(matches!(
            Cidr::parse("10.0.0.0/x"),
            Err(CidrError::BadPrefix(_))
        ));
        assert!(Cidr::parse("10.0.0.0/8").unwrap().to_string() == "10.0.0.0/8");
    }
}
