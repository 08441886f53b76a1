//! The real [`Env`] the config loader uses: the file system, the system's
//! name resolver, and this module's certificate check.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use super::cert::check_pair;
use super::TlsError;
use crate::config::{CertFacts, CertFault, Env};

/// The outside world, for `config::load_file` and `config::load_str`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemEnv;

impl Env for SystemEnv {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        path.canonicalize()
    }

    fn resolve(&self, host_port: &str) -> io::Result<Vec<SocketAddr>> {
        Ok(host_port.to_socket_addrs()?.collect())
    }

    fn cores(&self) -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    fn inspect_cert(
        &self,
        cert_path: &Path,
        cert_pem: &[u8],
        key_path: &Path,
        key_pem: &[u8],
    ) -> Result<CertFacts, CertFault> {
        match check_pair(cert_path, cert_pem, key_path, key_pem) {
            Ok((_, facts)) => Ok(facts),
            Err(e @ TlsError::Key { .. }) => Err(CertFault::Key(e.to_string())),
            Err(e) => Err(CertFault::Cert(e.to_string())),
        }
    }
}
