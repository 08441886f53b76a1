//! The firewall inside the proxy: connection admission at accept (PROXY
//! header, bans, CIDR, per-client limits; before any TLS work), path
//! normalisation, ordered request rules with rate limits, and the host
//! nftables rulesets rendered from `[topology]`.
//!
//! It runs what the config describes: [`cidr::CidrSet`] from a listener's
//! client lists, [`rules::RuleRt`] from each rule, [`bans::Bans`] from the
//! ban policy, [`nft::render`] from the topology.
//!
//! Exposes [`admission::ConnFilter`], [`cidr::CidrSet`], [`path::normalize`],
//! [`rules::RuleRt`] and [`evaluate`](rules::evaluate). Every rejection is
//! counted per rule and action (see `docs/metrics.md`).

pub mod admission;
pub mod bans;
pub mod cidr;
pub mod conn_limits;
pub mod events;
pub mod nft;
pub mod path;
pub mod proxy_protocol;
pub mod ratelimit;
pub mod rules;
