//! A stable 64-bit hash: seeded FNV-1a, then a 64-bit finaliser.
//!
//! Stable across processes and builds (no `RandomState`), so every instance
//! of rampart maps a key, and names a sticky server, the same way.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// 2^64 / golden ratio, the splitmix64 increment.
pub(super) const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// Seed for request keys (client IP, header or cookie value).
pub(super) const SEED_KEY: u64 = 0;
/// Seed for a server's Maglev offset.
pub(super) const SEED_OFFSET: u64 = 1;
/// Seed for a server's Maglev skip.
pub(super) const SEED_SKIP: u64 = 2;
/// Seed for a server's sticky cookie id.
pub(super) const SEED_STICKY: u64 = 3;

/// Hashes `bytes` with `seed`.
pub(super) fn hash64(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET ^ mix64(seed.wrapping_add(GOLDEN));
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    mix64(h ^ bytes.len() as u64)
}

/// The splitmix64 finaliser: a bijection that spreads every input bit.
pub(super) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
