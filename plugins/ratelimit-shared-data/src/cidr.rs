//! Client networks (`10.0.0.0/8`, `2001:db8::/32`, a bare address) and client address parsing.

use std::net::IpAddr;

/// A network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr/prefix` or a bare address (a single host). Errors are lowercase messages.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("invalid address {addr:?}"))?;
        let net = net.to_canonical();
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("invalid prefix length {p:?}: must be 0 to {max}"))?,
        };
        Ok(Self { net, prefix })
    }

    /// True if `ip` is inside the network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The IP of a client address as hosts give it: `1.2.3.4:5678`, `[::1]:80`, `::1` or `1.2.3.4`.
pub fn parse_client_ip(text: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(text).ok()?.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, _) = rest.split_once(']')?;
        return ip.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    }
    let (ip, _port) = text.rsplit_once(':')?;
    ip.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// The last (rightmost) item of a comma-separated forwarding header, as an IP.
pub fn last_forwarded_ip(value: &[u8]) -> Option<IpAddr> {
    let last = value.rsplit(|b| *b == b',').next()?;
    parse_client_ip(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_v6_and_bare() {
        let net = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.200.1.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.1.2.3")), "v4-mapped");
        let host = Cidr::parse("192.168.1.7").unwrap();
        assert!(host.contains(ip("192.168.1.7")));
        assert!(!host.contains(ip("192.168.1.8")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::5")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1")));
    }

    #[test]
    fn refusals() {
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope/8").is_err());
        assert!(Cidr::parse("::1/129").is_err());
    }

    #[test]
    fn client_addresses() {
        assert_eq!(parse_client_ip(b"1.2.3.4:5678"), Some(ip("1.2.3.4")));
        assert_eq!(parse_client_ip(b"[::1]:80"), Some(ip("::1")));
        assert_eq!(parse_client_ip(b"::1"), Some(ip("::1")));
        assert_eq!(parse_client_ip(b"1.2.3.4"), Some(ip("1.2.3.4")));
        assert_eq!(parse_client_ip(b"junk"), None);
        assert_eq!(parse_client_ip(b"\xff"), None);
        assert_eq!(
            last_forwarded_ip(b"6.6.6.6, 10.0.0.1 , 192.0.2.9"),
            Some(ip("192.0.2.9"))
        );
    }
}
