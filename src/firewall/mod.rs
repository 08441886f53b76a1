//! The firewall inside the proxy: connection filtering by CIDR at accept
//! (before any TLS work), path normalisation, and ordered request rules.
//!
//! Exposes [`cidr::CidrSet`], [`path::normalize`], the rule types in
//! [`rules`] and [`evaluate`](rules::evaluate). Every rejection is counted
//! per rule and action (see `docs/metrics.md`).

pub mod bans;
pub mod cidr;
pub mod conn_limits;
pub mod events;
pub mod nft;
pub mod path;
pub mod proxy_protocol;
pub mod ratelimit;
pub mod rules;
