//! The firewall inside the proxy: connection filtering by CIDR at accept
//! (before any TLS work), path normalisation, and ordered request rules;
//! bans, per-client connection limits, the PROXY protocol, and the
//! nftables rulesets of the hosts.
//!
//! It runs what the config describes: [`cidr::CidrSet`] from a listener's
//! client lists, [`rules::RuleRt`] from each rule, [`bans::Bans`] from the
//! ban policy, [`nft::render`] from the topology.
//!
//! Exposes [`cidr::CidrSet`], [`path::normalize`], [`rules::RuleRt`] and
//! [`evaluate`](rules::evaluate). Every rejection is counted per rule and
//! action (see `docs/metrics.md`).

pub mod bans;
pub mod cidr;
pub mod conn_limits;
pub mod events;
pub mod nft;
pub mod path;
pub mod proxy_protocol;
pub mod ratelimit;
pub mod rules;
