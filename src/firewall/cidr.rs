//! CIDR allow and deny lists, IPv4 and IPv6; the longest matching prefix
//! decides. With any `allow` entry the default is deny, otherwise allow.
//! Built from a listener's [`ClientFilter`] (the text of CIDR blocks is
//! parsed at load, by `config::syntax`).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::model::ClientFilter;

/// Whether `ip` is reachable across the internet: not loopback,
/// unspecified, private (RFC 1918, shared 100.64/10, IPv6 ULA), link-local,
/// a documentation range, multicast, broadcast or reserved (240/4); an
/// IPv4-mapped IPv6 address counts as its IPv4 one. `rampart proxy` asks
/// it of a domain's addresses, `rampart audit` of listeners and admin
/// networks.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            let [a, b, ..] = v.octets();
            !(v.is_loopback()
                || v.is_unspecified()
                || v.is_private()
                || v.is_link_local()
                || v.is_documentation()
                || v.is_multicast()
                || v.is_broadcast()
                || a >= 240
                || (a == 100 && b & 0xc0 == 64))
        }
        IpAddr::V6(v) => {
            if let Some(v4) = v.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v.segments();
            !(v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

/// A listener's connection filter.
#[derive(Debug, Clone, Default)]
pub struct CidrSet {
    /// Sorted by prefix length, longest first: the first match wins.
    entries: Vec<(IpNet, bool)>,
    default_allow: bool,
}

impl CidrSet {
    pub fn new(allow: &[IpNet], deny: &[IpNet]) -> Self {
        let mut entries: Vec<(IpNet, bool)> = allow
            .iter()
            .map(|n| (*n, true))
            .chain(deny.iter().map(|n| (*n, false)))
            .collect();
        // Longest prefix first; at equal length, deny first.
        entries.sort_by_key(|(n, allow)| (std::cmp::Reverse(n.prefix_len()), *allow));
        CidrSet {
            entries,
            default_allow: allow.is_empty(),
        }
    }

    /// The filter a listener's config describes.
    pub fn from_filter(f: &ClientFilter) -> Self {
        Self::new(&f.allow, &f.deny)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// May `ip` connect?
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.entries
            .iter()
            .find(|(n, _)| n.contains(&ip))
            .map_or(self.default_allow, |(_, a)| *a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::syntax::parse_net;

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| parse_net(s).expect("net")).collect()
    }

    #[test]
    fn longest_prefix_wins() {
        let s = CidrSet::new(
            &nets(&["10.0.0.0/8", "2001:db8::/32"]),
            &nets(&["10.1.0.0/16", "2001:db8:bad::/48"]),
        );
        assert!(s.allows("10.2.3.4".parse().expect("ip")));
        assert!(!s.allows("10.1.2.3".parse().expect("ip")));
        assert!(
            !s.allows("192.0.2.1".parse().expect("ip")),
            "allow lists default to deny"
        );
        assert!(s.allows("2001:db8:1::1".parse().expect("ip")));
        assert!(!s.allows("2001:db8:bad::1".parse().expect("ip")));
        assert!(
            s.allows("::ffff:10.2.3.4".parse().expect("ip")),
            "IPv4-mapped addresses match IPv4 rules"
        );
        let deny_only = CidrSet::new(&[], &nets(&["192.0.2.0/24"]));
        assert!(deny_only.allows("198.51.100.1".parse().expect("ip")));
        assert!(!deny_only.allows("192.0.2.9".parse().expect("ip")));
        let exact = CidrSet::new(&nets(&["192.0.2.9"]), &nets(&["192.0.2.0/24"]));
        assert!(exact.allows("192.0.2.9".parse().expect("ip")));
    }

    #[test]
    fn public_addresses_are_those_the_internet_routes() {
        let public = |s: &str| is_public(s.parse().expect("ip"));
        for ip in ["93.184.215.14", "2606:2800:21f:cb07::1", "::ffff:93.184.215.14"] {
            assert!(public(ip), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.1.1",
            "192.0.2.1",
            "224.0.0.18",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "2001:db8::1",
            "ff02::12",
            "::ffff:10.0.0.1",
        ] {
            assert!(!public(ip), "{ip}");
        }
    }
}
