//! The variable stores `setvar` writes (TX, IP, GLOBAL) for one
//! transaction: what the transaction set, over what the rule set's
//! prelude left (shared, read-only), so a request copies none of the
//! set-up's variables.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// Variables by name (lower-cased). Names are set by rules (some hold an
/// argument's name), at most one per `setvar` run: a fast hash is enough.
pub(super) type Map = HashMap<String, String, BuildHasherDefault<KeyHasher>>;

/// One store of one transaction.
#[derive(Default)]
pub(super) struct Vars<'b> {
    base: Option<&'b Map>,
    /// Set (`Some`) or deleted (`None`) by this transaction.
    own: HashMap<String, Option<String>, BuildHasherDefault<KeyHasher>>,
}

impl<'b> Vars<'b> {
    pub(super) fn over(base: &'b Map) -> Self {
        Vars {
            base: Some(base),
            own: HashMap::default(),
        }
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.get_key_value(name).map(|(_, v)| v)
    }

    pub(super) fn get_key_value(&self, name: &str) -> Option<(&str, &str)> {
        match self.own.get_key_value(name) {
            Some((k, Some(v))) => Some((k.as_str(), v.as_str())),
            Some((_, None)) => None,
            None => self
                .base
                .and_then(|b| b.get_key_value(name))
                .map(|(k, v)| (k.as_str(), v.as_str())),
        }
    }

    pub(super) fn insert(&mut self, name: String, value: String) {
        self.own.insert(name, Some(value));
    }

    pub(super) fn remove(&mut self, name: &str) {
        if self.base.is_some_and(|b| b.contains_key(name)) {
            self.own.insert(name.to_string(), None);
        } else {
            self.own.remove(name);
        }
    }

    /// Every variable, once (this transaction's value where it set one).
    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let own = &self.own;
        own.iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k.as_str(), v)))
            .chain(
                self.base
                    .into_iter()
                    .flat_map(|b| b.iter())
                    .filter(move |(k, _)| !own.contains_key(k.as_str()))
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
    }

    /// The store as one map (what a prelude keeps).
    pub(super) fn flatten(&self) -> Map {
        self.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}

/// A hasher for keys the rules choose or that are addresses and small
/// ids: a multiply-rotate mix, not SipHash (clients do not choose them).
#[derive(Default)]
pub(super) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        let mut last = [0u8; 8];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.write_u64(u64::from_le_bytes(last) ^ (rest.len() as u64) << 56);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_reads_through_to_the_prelude_and_shadows_it() {
        let mut base = Map::default();
        base.insert("a".into(), "1".into());
        base.insert("b".into(), "2".into());
        let mut v = Vars::over(&base);
        assert_eq!(v.get("a"), Some("1"));
        v.insert("a".into(), "10".into());
        v.insert("c".into(), "3".into());
        v.remove("b");
        v.remove("nothing");
        assert_eq!(v.get("a"), Some("10"));
        assert_eq!(v.get("b"), None);
        let mut all: Vec<_> = v.iter().collect();
        all.sort_unstable();
        assert_eq!(all, [("a", "10"), ("c", "3")]);
        assert_eq!(v.flatten().len(), 2);
        // The prelude itself is untouched.
        assert_eq!(base.get("a").map(String::as_str), Some("1"));
        assert_eq!(base.len(), 2);
    }
}
