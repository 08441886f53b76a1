//! Small grammars of what users write that the running code reads too:
//! CIDR blocks and CIDR list files (listener `allow`/`deny`, trusted
//! proxies, rule clients, the topology's admin networks), and cookie
//! names (sticky cookies, hash keys). The loader validates with them; the
//! firewall and the balancer call the same functions.

use std::net::IpAddr;

use ipnet::IpNet;

/// `10.0.0.0/8`, `2001:db8::/32` or a single address.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not a CIDR block or an IP address"))
}

/// Parses a list file: one CIDR (or address) per line, `#` comments. An
/// error names the line (from 1).
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

/// Characters that may not appear in a cookie name (RFC 6265 token).
const SEPARATORS: &[u8] = b"()<>@,;:\\\"/[]?={}";

/// Whether `s` is a valid cookie name: a non-empty RFC 6265 token.
pub fn is_valid_cookie_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !SEPARATORS.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_files() {
        let l = parse_list("# office\n10.0.0.0/8  # vpn\n\n192.0.2.1\n").expect("list");
        assert_eq!(l.len(), 2);
        assert_eq!(
            parse_list("10.0.0.0/8\nnope\n"),
            Err((2, "`nope` is not a CIDR block or an IP address".into()))
        );
    }

    #[test]
    fn cookie_name_validation() {
        assert!(is_valid_cookie_name("rampart_srv"));
        assert!(is_valid_cookie_name("__Host-id"));
        for bad in ["", "a b", "a=b", "a;b", "é", "a\"b"] {
            assert!(!is_valid_cookie_name(bad), "{bad}");
        }
    }
}
