//! What loading a config needs from the outside world, behind one trait:
//! reading files (the config, token and CIDR list files, certificates and
//! keys), asking whether a folder exists, resolving `HOST:PORT`, counting
//! cores, and checking a certificate against its key. Validation itself
//! touches nothing else, so it runs the same over a fake [`Env`] in tests.
//!
//! The real one is `tls::SystemEnv` (certificates are checked with the tls
//! module's own parsing).
//!
//! Exposes [`Env`], [`CertFacts`] and [`CertFault`].

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The outside world, as the loader sees it.
pub trait Env {
    /// The bytes of a file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Whether `path` is a folder.
    fn is_dir(&self, path: &Path) -> bool;
    /// `path` made absolute with symbolic links resolved (it must exist).
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
    /// The addresses a `HOST:PORT` name stands for.
    fn resolve(&self, host_port: &str) -> io::Result<Vec<SocketAddr>>;
    /// Worker threads when the config leaves it to rampart: one per core.
    fn cores(&self) -> usize;
    /// Checks a PEM certificate chain (leaf first) against its PEM private
    /// key: what the certificate holds, or which of the two is wrong and why.
    fn inspect_cert(
        &self,
        cert_path: &Path,
        cert_pem: &[u8],
        key_path: &Path,
        key_pem: &[u8],
    ) -> Result<CertFacts, CertFault>;
}

/// What a certificate holds, found when it is checked at load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertFacts {
    /// DNS names (and IP addresses, as text) in the leaf certificate.
    pub cert_names: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub not_after: i64,
    /// Who signed it (the issuer's common name and organisation).
    pub issuer: String,
}

/// Why a certificate and key pair cannot be used: the message, said of the
/// certificate or of the key (the error points at that key of the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertFault {
    Cert(String),
    Key(String),
}

/// A file's text, through `env`; bytes that are not UTF-8 are an error
/// worded as `std::fs::read_to_string` words it.
pub(super) fn read_text(env: &dyn Env, path: &Path) -> io::Result<String> {
    String::from_utf8(env.read(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
}
