//! IP networks in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or a single address), as policy
//! conditions and the trusted-proxy setting write them.

use std::net::IpAddr;
use std::str::FromStr;

use crate::InvalidInput;

/// A network: an address and how many of its leading bits are fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    bits: u32,
}

fn as_u128(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl Cidr {
    /// Whether `address` lies in the network. IPv4 and IPv6 never match each other.
    pub fn contains(&self, address: IpAddr) -> bool {
        if address.is_ipv4() != self.network.is_ipv4() {
            return false;
        }
        let width = if address.is_ipv4() { 32 } else { 128 };
        let shift = width - self.bits;
        let mask = if shift >= 128 { 0 } else { u128::MAX << shift };
        (as_u128(address) & mask) == (as_u128(self.network) & mask)
    }
}

impl FromStr for Cidr {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            InvalidInput::new("network", format!("{s:?} is not an address or a CIDR network like 10.0.0.0/8"))
        };
        let (address, bits) = s.trim().split_once('/').unwrap_or((s.trim(), ""));
        let network: IpAddr = address.trim().parse().map_err(|_| bad())?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let bits = if bits.is_empty() { width } else { bits.trim().parse::<u32>().map_err(|_| bad())? };
        if bits > width {
            return Err(bad());
        }
        Ok(Self { network, bits })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(cidr: &str, address: &str) -> bool {
        cidr.parse::<Cidr>().expect("cidr").contains(address.parse().expect("address"))
    }

    #[test]
    fn membership() {
        assert!(contains("10.0.0.0/8", "10.1.2.3"));
        assert!(!contains("10.0.0.0/8", "11.0.0.1"));
        assert!(contains("0.0.0.0/0", "203.0.113.9"));
        assert!(contains("127.0.0.1", "127.0.0.1") && !contains("127.0.0.1", "127.0.0.2"));
        assert!(contains("2001:db8::/32", "2001:db8::1"));
        assert!(!contains("2001:db8::/32", "2001:db9::1"));
        assert!(!contains("2001:db8::/32", "10.0.0.1"), "families never match");
        assert!(contains("::/0", "::1"));
    }

    #[test]
    fn refusals() {
        for bad in ["", "10.0.0.0/33", "::/129", "10.0.0/8", "host", "10.0.0.0/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
    }
}
