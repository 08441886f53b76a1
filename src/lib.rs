//! rampart: the front of a web infrastructure in one binary.
//!
//! The crate is laid out one module per concern; each module opens with a
//! doc comment saying what it owns and what it exposes:
//!
//! - [`config`]: the TOML schema users write, and the validated model the
//!   code runs.
//! - [`app`]: turns a model into running listeners, origins and tasks, and
//!   drains them on shutdown.
//! - [`listener`]: accept loops, socket options, TLS handshakes.
//! - [`tls`]: rustls server configs, SNI selection, the local CA.
//! - [`proxy`]: the per-request pipeline, forwarding, upgrades and the one
//!   place where errors become HTTP answers.
//! - [`balancer`]: pools of servers, their live state, and the algorithms
//!   that pick one.
//! - [`health`]: active health checks.
//! - [`admin`]: the admin API (runtime changes, reload).
//! - [`origin`]: the built-in static web server role.
//! - [`body`]: the one response body type every answer uses.
//! - [`cli`]: the command line.
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, rust_2018_idioms)]

pub mod accesslog;
pub mod admin;
pub mod alerts;
pub mod app;
pub mod balancer;
pub mod body;
pub mod cli;
pub mod client;
pub mod config;
pub mod firewall;
pub mod health;
pub mod listener;
pub mod metrics;
pub mod origin;
pub mod proxy;
pub mod runtime;
pub mod stats;
pub mod tls;
pub mod top;
pub mod units;
