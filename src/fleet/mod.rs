//! One configuration for a fleet, kept in etcd: revisions pushed by
//! operators (each validated first, compare-and-swap on the current one),
//! watched by every instance, applied as a hot reload, with each
//! instance's result written back under `status/NODE`.
//!
//! Keys, under the configured prefix (`/rampart` by default):
//!
//! | key | value |
//! |---|---|
//! | `config/current` | the current [`Revision`] (JSON) |
//! | `config/rev/NNNNNNNNNN` | every revision pushed, by number |
//! | `status/NODE` | what NODE runs: a [`NodeStatus`] (JSON) |
//! | `runtime/POOL/SERVER` | the runtime changes to one server made through any instance's admin API: a [`ServerRecord`] (JSON) |
//! | `acme/cert/LISTENER` | an ACME listener's certificate chain and key, [`seal`]ed |
//! | `acme/account/DIRECTORY` | the ACME account (its key), sealed |
//! | `acme/leader/LISTENER` | the node ordering for the listener now (under its lease) |
//! | `ca/internal` | the internal CA (`rampart ca`): its certificate and key, sealed |
//! | `acme/challenge/KIND/ID` | a challenge answer every instance serves during an order (under the lease) |
//!
//! Exposes [`Store`] (the etcd side) and its [`Lead`] (a key held under a
//! lease), [`seal`] (secrets sealed before they reach etcd), [`Revision`], [`NodeStatus`],
//! [`cache`] (the last applied revision on disk, for starts without etcd)
//! and [`FleetError`].

pub mod cache;
pub mod seal;
mod store;

pub use store::{Lead, Store, Update};

use serde::{Deserialize, Serialize};

/// A configuration as pushed: the whole document and who pushed it when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// 1, 2, 3... in push order.
    pub revision: u64,
    /// SHA-256 of `document`, hex.
    pub hash: String,
    pub author: String,
    /// When it was pushed, Unix seconds.
    pub time_unix: u64,
    pub message: String,
    /// The configuration, TOML.
    pub document: String,
}

/// What one instance runs, as it reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node: String,
    /// The revision it serves (0: none from the fleet yet).
    pub revision: u64,
    /// When it last applied or refused one, Unix seconds.
    pub time_unix: u64,
    /// Why it refused `refused_revision` (it keeps serving `revision`).
    pub error: Option<String>,
    pub refused_revision: Option<u64>,
}

/// The runtime changes to one server (admin API: add, weight, drain,
/// remove), as every instance applies them. A record with nothing set is
/// a server back to what the configuration says (an added server gone).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    /// Added through the API: its address, weight and request limit.
    pub added: Option<AddedRecord>,
    pub weight: Option<u32>,
    pub drained: bool,
    /// A server of the configuration removed.
    pub removed: bool,
    /// Which node made the change.
    pub by: String,
}

/// A server added through the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedRecord {
    pub address: std::net::SocketAddr,
    pub weight: u32,
    pub max_requests: u32,
}

/// What can go wrong with the fleet's store.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("etcd at {endpoints}: {source}")]
    Etcd {
        endpoints: String,
        #[source]
        source: etcd_client::Error,
    },
    #[error("revision {expected} is no longer the current one: revision {current} was pushed meanwhile; look at it (`rampart fleet diff {expected} {current}`), rebase your change on it and push again")]
    Conflict { expected: u64, current: u64 },
    #[error("{pool}/{server} was changed on another instance ({by}) meanwhile: look at it and try again")]
    ChangedElsewhere {
        pool: String,
        server: String,
        by: String,
        /// Its record now, with its etcd revision (None: deleted).
        current: Option<Box<(ServerRecord, i64)>>,
    },
    #[error("the fleet has no revision {0}")]
    NoRevision(u64),
    #[error("{key} in etcd is not what rampart wrote: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("{0}")]
    Settings(String),
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let hash = rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .map(|s| s.common.hash_provider.hash(bytes));
    hash.map(|h| h.as_ref().iter().map(|b| format!("{b:02x}")).collect())
        .unwrap_or_default()
}

/// Now, in Unix seconds.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
