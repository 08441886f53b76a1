//! Host firewalls: an nftables ruleset for every host of the `[topology]`,
//! rendered from the same description, so the proxy's view and the hosts'
//! firewalls never disagree.
//!
//! `policy` turns roles into allowed flows, both ways: inbound, every host
//! drops by default and allows established traffic, loopback, essential
//! ICMP, ssh from the admin network, metrics from monitor hosts and what its
//! roles serve (`lb`: 80/443 from anywhere; `web`/`app`: their ports from the
//! balancers; `db`: its port from web and app hosts and other database
//! hosts). Outbound, a host may open connections only to what its roles use
//! (a balancer to the web and app servers, web to app and db, db to db, the
//! monitor to every metrics port), to the DNS, NTP and mirror hosts of the
//! topology and to its own `egress_to`, unless `egress_open`. `render`
//! writes the nft text, with counted, rate-limited logged drops; `state`
//! applies it, diffs it against the live table and reads the counters.

mod policy;
mod render;
mod state;

pub use policy::{policy, policy_of, Flow, HostPolicy, Peer, Proto};
pub use render::render;
pub use state::{apply, config_drift, diff, live_drift, prometheus, stats, Drift, Dropped};

/// Why rendering, applying or reading a ruleset failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("no host is named `{0}` in [topology]")]
    NoHost(String),
    #[error("cannot run nft: {0}")]
    Run(std::io::Error),
    #[error("nft refused the ruleset ({step}): {stderr}")]
    Refused { step: &'static str, stderr: String },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
}

#[cfg(test)]
mod tests;
