//! CIDR allow and deny lists, IPv4 and IPv6; the longest matching prefix
//! decides. With any `allow` entry the default is deny, otherwise allow.

use std::net::IpAddr;

use ipnet::IpNet;

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

/// Parses a list file: one CIDR (or address) per line, `#` comments.
pub fn parse_list(text: &str) -> Result<Vec<IpNet>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        out.push(parse_net(l).map_err(|e| (i + 1, e))?);
    }
    Ok(out)
}

/// `10.0.0.0/8`, `2001:db8::/32` or a single address.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not a CIDR block or an IP address"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn list_files() {
        let l = parse_list("# office\n10.0.0.0/8  # vpn\n\n192.0.2.1\n").expect("list");
        assert_eq!(l.len(), 2);
        assert_eq!(
            parse_list("10.0.0.0/8\nnope\n"),
            Err((2, "`nope` is not a CIDR block or an IP address".into()))
        );
    }
}
