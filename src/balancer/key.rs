//! What the hash algorithm hashes: the value of the pool's [`HashKey`]
//! in one request.

use std::net::IpAddr;

use super::cookie;
use super::PickInput;
use crate::config::model::HashKey;
use crate::hash::{hash64, SEED_KEY};

/// The stable hash of `key` for this request.
pub(super) fn key_hash(key: &HashKey, input: &PickInput<'_>) -> u64 {
    let value = match key {
        HashKey::ClientIp => None,
        HashKey::Header(name) => input.headers.get(name.as_str()),
        HashKey::Cookie(name) => cookie::find(input.headers, name),
    };
    match value {
        Some(v) if !v.is_empty() => hash64(SEED_KEY, v),
        _ => ip_hash(input.client_ip),
    }
}

/// Hashes an address; an IPv4-mapped IPv6 address hashes as its IPv4 form.
fn ip_hash(ip: IpAddr) -> u64 {
    match ip.to_canonical() {
        IpAddr::V4(a) => hash64(SEED_KEY, &a.octets()),
        IpAddr::V6(a) => hash64(SEED_KEY, &a.octets()),
    }
}
