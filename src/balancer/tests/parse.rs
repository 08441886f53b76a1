use http::HeaderName;

use super::super::{is_valid_cookie_name, Algorithm, HashKey};

#[test]
fn algorithm_parse_round_trips() {
    for a in [
        Algorithm::RoundRobin,
        Algorithm::Weighted,
        Algorithm::LeastRequests,
        Algorithm::P2cEwma,
        Algorithm::Hash,
    ] {
        assert_eq!(Algorithm::parse(a.as_str()), Some(a));
    }
    assert_eq!(Algorithm::parse("p2c_ewma"), Some(Algorithm::P2cEwma));
    assert_eq!(Algorithm::parse("RoundRobin"), None);
    assert_eq!(Algorithm::parse(""), None);
}

#[test]
fn hash_key_parse() {
    assert_eq!(HashKey::parse("client_ip"), Some(HashKey::ClientIp));
    assert_eq!(
        HashKey::parse("header:X-User"),
        Some(HashKey::Header(HeaderName::from_static("x-user")))
    );
    assert_eq!(
        HashKey::parse("cookie:session"),
        Some(HashKey::Cookie("session".to_owned()))
    );
    for bad in [
        "header:",
        "cookie:",
        "header:bad name",
        "cookie:a;b",
        "cookie:a b",
        "ip",
        "Client_ip",
    ] {
        assert_eq!(HashKey::parse(bad), None, "{bad}");
    }
}

#[test]
fn cookie_name_validation() {
    assert!(is_valid_cookie_name("rampart_srv"));
    assert!(is_valid_cookie_name("__Host-id"));
    for bad in ["", "a b", "a=b", "a;b", "é", "a\"b"] {
        assert!(!is_valid_cookie_name(bad), "{bad}");
    }
}
