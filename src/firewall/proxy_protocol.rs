//! The PROXY protocol (v1 text and v2 binary, as HAProxy defines them): a
//! load balancer in front of rampart announces the client's address at the
//! start of the connection. rampart reads exactly the header's bytes, so
//! the stream that follows (TLS or HTTP) is untouched.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

/// Why a PROXY header was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("the connection did not start with a PROXY protocol header")]
    Missing,
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(&'static str),
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads a v1 or v2 header. `Ok(None)`: a valid header that carries no
/// address (`UNKNOWN`, `LOCAL`): the socket's peer stays the client.
pub async fn read_header<S: AsyncRead + Unpin>(s: &mut S) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut start = [0u8; 5];
    s.read_exact(&mut start).await?;
    if &start == b"PROXY" {
        return read_v1(s).await;
    }
    if start == V2_SIGNATURE[..5] {
        return read_v2(s).await;
    }
    Err(ProxyHeaderError::Missing)
}

async fn read_v1<S: AsyncRead + Unpin>(s: &mut S) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    // At most 107 bytes in all, ending in CRLF; read byte by byte so that
    // nothing after the header is consumed.
    let mut line = Vec::with_capacity(108);
    loop {
        let b = s.read_u8().await?;
        line.push(b);
        if line.ends_with(b"\r\n") {
            break;
        }
        // 5 bytes of "PROXY" and at most 102 here, CRLF included.
        if line.len() >= 102 {
            return Err(ProxyHeaderError::Malformed("v1 header longer than 107 bytes"));
        }
    }
    let text =
        std::str::from_utf8(&line[..line.len() - 2]).map_err(|_| ProxyHeaderError::Malformed("not text"))?;
    let parts: Vec<&str> = text.split(' ').collect();
    match parts.as_slice() {
        ["", "UNKNOWN", ..] => Ok(None),
        ["", proto @ ("TCP4" | "TCP6"), src, _dst, sport, _dport] => {
            let ip: IpAddr = src
                .parse()
                .map_err(|_| ProxyHeaderError::Malformed("source address"))?;
            if (*proto == "TCP4") != ip.is_ipv4() {
                return Err(ProxyHeaderError::Malformed("address family"));
            }
            let port: u16 = sport
                .parse()
                .map_err(|_| ProxyHeaderError::Malformed("source port"))?;
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(ProxyHeaderError::Malformed("v1 fields")),
    }
}

async fn read_v2<S: AsyncRead + Unpin>(s: &mut S) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut rest = [0u8; 11];
    s.read_exact(&mut rest).await?;
    if rest[..7] != V2_SIGNATURE[5..] {
        return Err(ProxyHeaderError::Missing);
    }
    let ver_cmd = rest[7];
    let fam = rest[8];
    let len = usize::from(u16::from_be_bytes([rest[9], rest[10]]));
    if ver_cmd >> 4 != 2 {
        return Err(ProxyHeaderError::Malformed("v2 version"));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    if ver_cmd & 0x0F == 0 {
        return Ok(None); // LOCAL: health checks of the proxy itself
    }
    match fam >> 4 {
        1 if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            Ok(Some(SocketAddr::new(
                IpAddr::V4(ip),
                u16::from_be_bytes([body[8], body[9]]),
            )))
        }
        2 if body.len() >= 36 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&body[..16]);
            Ok(Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(a)),
                u16::from_be_bytes([body[32], body[33]]),
            )))
        }
        0 => Ok(None),
        _ => Err(ProxyHeaderError::Malformed("v2 address family or length")),
    }
}

/// A v1 (text) header for `src` → `dst`; mixed families are written as
/// IPv6 (an IPv4 address mapped).
pub fn v1_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let line = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => format!("PROXY TCP4 {s} {d} {} {}\r\n", src.port(), dst.port()),
        (s, d) => {
            let six = |a: IpAddr| match a {
                IpAddr::V6(v) => v,
                IpAddr::V4(v) => v.to_ipv6_mapped(),
            };
            format!(
                "PROXY TCP6 {} {} {} {}\r\n",
                six(s),
                six(d),
                src.port(),
                dst.port()
            )
        }
    };
    line.into_bytes()
}

/// A v2 header for `src` → `dst` (sent to servers by TCP listeners with
/// `send_proxy`, and used by tests).
pub fn v2_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(0x21); // v2, PROXY
    match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            h.push(0x11);
            h.extend_from_slice(&12u16.to_be_bytes());
            h.extend_from_slice(&s.ip().octets());
            h.extend_from_slice(&d.ip().octets());
            h.extend_from_slice(&s.port().to_be_bytes());
            h.extend_from_slice(&d.port().to_be_bytes());
        }
        _ => {
            let six = |a: SocketAddr| match a.ip() {
                IpAddr::V6(v) => v.octets(),
                IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
            };
            h.push(0x21);
            h.extend_from_slice(&36u16.to_be_bytes());
            h.extend_from_slice(&six(src));
            h.extend_from_slice(&six(dst));
            h.extend_from_slice(&src.port().to_be_bytes());
            h.extend_from_slice(&dst.port().to_be_bytes());
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> (Result<Option<SocketAddr>, String>, Vec<u8>) {
        let mut cur = std::io::Cursor::new(bytes.to_vec());
        let r = read_header(&mut cur).await.map_err(|e| e.to_string());
        let pos = cur.position() as usize;
        (r, bytes[pos..].to_vec())
    }

    #[tokio::test]
    async fn v1_and_v2_headers_and_nothing_more_is_read() {
        let (r, rest) = parse(b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 443\r\nGET / HTTP/1.1\r\n").await;
        assert_eq!(r, Ok(Some("203.0.113.7:51000".parse().expect("addr"))));
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
        let (r, _) = parse(b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n").await;
        assert_eq!(r, Ok(Some("[2001:db8::7]:51000".parse().expect("addr"))));
        let (r, _) = parse(b"PROXY UNKNOWN\r\n").await;
        assert_eq!(r, Ok(None));
        let mut v2 = v2_header(
            "198.51.100.4:40000".parse().expect("a"),
            "192.0.2.1:443".parse().expect("a"),
        );
        v2.extend_from_slice(b"\x16\x03\x01");
        let (r, rest) = parse(&v2).await;
        assert_eq!(r, Ok(Some("198.51.100.4:40000".parse().expect("addr"))));
        assert_eq!(rest, b"\x16\x03\x01");
        let v2_6 = v2_header(
            "[2001:db8::9]:1".parse().expect("a"),
            "[2001:db8::1]:443".parse().expect("a"),
        );
        assert_eq!(
            parse(&v2_6).await.0,
            Ok(Some("[2001:db8::9]:1".parse().expect("addr")))
        );
    }

    #[tokio::test]
    async fn headers_written_read_back_the_same() {
        let pairs: [(&str, &str); 3] = [
            ("192.0.2.7:40000", "198.51.100.1:3306"),
            ("[2001:db8::7]:40000", "[2001:db8::1]:3306"),
            ("192.0.2.7:40000", "[2001:db8::1]:3306"),
        ];
        for (src, dst) in pairs {
            let (src, dst): (SocketAddr, SocketAddr) = (src.parse().expect("src"), dst.parse().expect("dst"));
            let expected = match (src, dst) {
                (SocketAddr::V4(_), SocketAddr::V6(_)) => match src.ip() {
                    IpAddr::V4(v) => SocketAddr::new(IpAddr::V6(v.to_ipv6_mapped()), src.port()),
                    IpAddr::V6(_) => src,
                },
                _ => src,
            };
            for header in [v1_header(src, dst), v2_header(src, dst)] {
                let mut bytes = header.clone();
                bytes.extend_from_slice(b"rest");
                let (r, rest) = parse(&bytes).await;
                assert_eq!(r, Ok(Some(expected)), "{:?}", String::from_utf8_lossy(&header));
                assert_eq!(rest, b"rest");
            }
        }
    }

    #[tokio::test]
    async fn bad_headers_are_refused() {
        assert!(parse(b"GET / HTTP/1.1\r\n\r\n").await.0.is_err());
        assert!(parse(b"PROXY TCP4 not-an-ip 192.0.2.1 1 2\r\n").await.0.is_err());
        assert!(parse(b"PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n")
            .await
            .0
            .is_err());
        assert!(parse(&[b'P'; 200]).await.0.is_err());
    }

    /// 107 bytes is the longest v1 header (the specification's limit); one
    /// byte more was accepted.
    #[tokio::test]
    async fn v1_headers_end_within_107_bytes() {
        let ip = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let at_limit = format!("PROXY TCP6 {ip} {ip} 00000001 00443\r\n");
        assert_eq!(at_limit.len(), 107);
        assert_eq!(
            parse(at_limit.as_bytes()).await.0,
            Ok(Some(SocketAddr::new(ip.parse().expect("ip"), 1)))
        );
        let over = format!("PROXY TCP6 {ip} {ip} 000000001 00443\r\n");
        assert!(parse(over.as_bytes()).await.0.is_err());
    }
}
