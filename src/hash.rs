//! A stable 64-bit hash: seeded FNV-1a, then a 64-bit finaliser.
//!
//! Stable across processes and builds (no `RandomState`), so every instance
//! of rampart maps a key, names a sticky server, and names a fleet-wide
//! rate-limit bucket the same way. Exposes [`hash64`], [`mix64`] and the
//! seeds its users pass.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// 2^64 / golden ratio, the splitmix64 increment.
pub const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// Seed for request keys (client IP, header or cookie value).
pub const SEED_KEY: u64 = 0;
/// Seed for a server's Maglev offset.
pub const SEED_OFFSET: u64 = 1;
/// Seed for a server's Maglev skip.
pub const SEED_SKIP: u64 = 2;
/// Seed for a server's sticky cookie id.
pub const SEED_STICKY: u64 = 3;
/// Seed for the parts of a cluster-scope rate-limit key (header values).
pub const SEED_FLEET: u64 = 4;
/// Seed for content digests (ETags, colours).
pub const SEED_CONTENT: u64 = 5;

/// Hashes `bytes` with `seed`.
pub fn hash64(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET ^ mix64(seed.wrapping_add(GOLDEN));
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    mix64(h ^ bytes.len() as u64)
}

/// The splitmix64 finaliser: a bijection that spreads every input bit.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
