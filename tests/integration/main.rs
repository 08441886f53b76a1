//! rampart's integration tests: real sockets on port 0, real TLS, real
//! processes where a test needs signals or memory figures.

mod support;

mod acme;
mod architecture;
mod backend_tls;
mod browser;
mod cli;
mod cluster;
mod daemon;
mod database;
mod engine;
mod fault;
mod faults;
mod firewall;
mod fleet;
mod fleet_acme;
mod fuzz;
mod h2attack;
mod ha;
mod hardening;
mod hostfw;
mod http3;
mod live;
mod mariadb;
mod monitor;
mod netns;
mod packaging;
mod proxy;
mod quickstart;
mod revocation;
mod rfc9112;
mod streaming;
mod tcp;
mod tls;
mod upstream;
mod waf;
