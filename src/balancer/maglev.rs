//! Maglev consistent hashing.
//!
//! Every server has a preference list, a permutation of the table's slots
//! given by an offset and a skip hashed from its name. Servers take turns
//! claiming their next free preferred slot until the table is full. Weights
//! are honoured: per round, a server takes as many turns as its weight
//! (weights reduced by their gcd), so it ends up with a share of slots
//! roughly proportional to its weight. Removing a server moves about its own
//! share of keys, plus a little.

use std::fmt;
use std::sync::Arc;

use super::weighted::reduced_weights;
use super::Backend;
use crate::hash::{hash64, mix64, SEED_OFFSET, SEED_SKIP};

/// Times a key is hashed again to find a server that can take it.
const REHASHES: u64 = 16;

/// Number of slots; a prime, so every skip gives a full permutation.
pub(super) const TABLE_SIZE: usize = 65_537;

const EMPTY: u32 = u32::MAX;

pub(super) struct Maglev {
    /// Slot → server index.
    table: Box<[u32]>,
}

impl fmt::Debug for Maglev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Maglev")
            .field("slots", &self.table.len())
            .finish()
    }
}

impl Maglev {
    pub(super) fn new(servers: &[Arc<Backend>]) -> Self {
        if servers.is_empty() {
            return Self { table: Box::new([]) };
        }
        let m = TABLE_SIZE as u64;
        let turns = reduced_weights(servers);
        // Each server's next preferred slot, and its step through the table.
        let mut pos: Vec<u64> = Vec::with_capacity(servers.len());
        let mut skip: Vec<u64> = Vec::with_capacity(servers.len());
        for s in servers {
            pos.push(hash64(SEED_OFFSET, s.name.as_bytes()) % m);
            skip.push(hash64(SEED_SKIP, s.name.as_bytes()) % (m - 1) + 1);
        }
        let mut table = vec![EMPTY; TABLE_SIZE];
        let mut filled = 0;
        'fill: loop {
            for (i, &t) in turns.iter().enumerate() {
                for _ in 0..t {
                    // Terminates: the list is a permutation and a slot is free.
                    loop {
                        let slot = pos[i] as usize;
                        pos[i] = (pos[i] + skip[i]) % m;
                        if table[slot] == EMPTY {
                            table[slot] = u32::try_from(i).unwrap_or(0);
                            filled += 1;
                            break;
                        }
                    }
                    if filled == TABLE_SIZE {
                        break 'fill;
                    }
                }
            }
        }
        Self {
            table: table.into_boxed_slice(),
        }
    }

    /// The server index for a key hash (the pool must be non-empty).
    pub(super) fn pick(&self, key_hash: u64) -> usize {
        let slot = (key_hash % TABLE_SIZE as u64) as usize;
        self.table.get(slot).map_or(0, |&s| s as usize)
    }

    /// The server for a key hash when `ok` holds for it; else the key is
    /// hashed again (up to [`REHASHES`] times), so that the keys of a
    /// server that cannot take them spread over the others while every
    /// other key stays where it is; then the next server in order.
    pub(super) fn pick_available(
        &self,
        key_hash: u64,
        n: usize,
        ok: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let first = self.pick(key_hash);
        if ok(first) {
            return Some(first);
        }
        let mut h = key_hash;
        for round in 1..=REHASHES {
            h = mix64(h ^ round);
            let i = self.pick(h);
            if ok(i) {
                return Some(i);
            }
        }
        (1..n).map(|k| (first + k) % n).find(|&i| ok(i))
    }

    #[cfg(test)]
    pub(super) fn table(&self) -> &[u32] {
        &self.table
    }
}
