//! TLS: checking certificates against their keys, signing keys built from
//! the config's certificates, choosing one by SNI, the rustls server
//! configuration (TLS 1.2/1.3, modern suites, ALPN), the handshake step of
//! a client connection, the client configuration towards backends
//! (`[pool.tls]`: roots, pins, mTLS), and the internal CA that issues the
//! local certificate `rampart up` uses and rampart's client certificate.
//! [`SystemEnv`] is the config loader's view of the real world (files,
//! names, certificates).
//!
//! Exposes [`LoadedCert`], [`server_config`], [`client::upstream_config`],
//! [`handshake::accept`], [`ca::ensure_local_cert`], [`ca::ensure_client_cert`],
//! [`SystemEnv`] and [`TlsError`].

pub mod acme;
pub mod ca;
mod cert;
pub mod check;
pub mod client;
mod env;
pub mod handshake;
pub mod origin;
pub mod renew;
mod server;

pub use cert::LoadedCert;
pub use env::SystemEnv;
pub use server::{provider, server_config, Alpn};

/// Everything that can go wrong loading or building TLS material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path} holds no PEM certificate (expected a `-----BEGIN CERTIFICATE-----` block)")]
    NoCert { path: String },
    #[error("cannot parse certificate in {path}: {reason}")]
    CertParse { path: String, reason: String },
    #[error("cannot use private key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is readable by others (mode {mode:o}): private keys must be 0600 (chmod 600 {path})")]
    KeyMode { path: String, mode: u32 },
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
    #[error("cannot build the TLS configuration: {0}")]
    Config(String),
}
