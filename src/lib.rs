//! rampart: the front of a web infrastructure in one binary.
//!
//! The crate is laid out one module per concern; each module opens with a
//! doc comment saying what it owns and what it exposes. Dependencies run
//! one way (leaves first; `tests/integration/architecture.rs` keeps it so):
//!
//! - leaves: [`units`] (durations, sizes, the clock), [`body`] (the
//!   response body every answer is built on), [`stats`] (request counters).
//! - [`config`]: the TOML schema users write, and the validated model the
//!   code runs.
//! - [`listener`]: binding, accept loops, the drain.
//! - runtime pieces built from the model: [`balancer`] (pools, server
//!   state, algorithms, retry budget), [`firewall`] (connection admission,
//!   request rules, bans, nftables), [`tls`] (certificates, the rustls
//!   server config, the handshake step, the local CA), [`origin`] (the
//!   built-in web server), [`accesslog`].
//! - [`runtime`]: the running state one configuration becomes, swapped
//!   atomically on reload.
//! - readers of that state: [`metrics`] (registry, sampler), [`health`]
//!   (active checks), [`alerts`].
//! - [`proxy`]: the per-request pipeline, forwarding, upgrades and the one
//!   place where proxy errors become HTTP answers.
//! - [`admin`]: the admin API; it asks the application for changes through
//!   the [`admin::Control`] interface.
//! - [`app`]: turns a model into running listeners, origins and tasks,
//!   reloads, drains them on shutdown, and implements [`admin::Control`].
//! - [`cli`], [`client`], [`top`]: the command line.
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, rust_2018_idioms)]

pub mod accesslog;
pub mod admin;
pub mod alerts;
pub mod app;
pub mod audit;
pub mod balancer;
pub mod body;
pub mod cli;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod conns;
pub mod daemon;
pub mod fields;
pub mod firewall;
pub mod fleet;
pub mod hash;
pub mod health;
pub mod http3;
pub mod listener;
pub mod metrics;
pub mod origin;
pub mod plan;
pub mod proxy;
pub mod runtime;
pub mod stats;
pub mod tcp;
pub mod tls;
pub mod top;
pub mod units;
pub mod waf;
