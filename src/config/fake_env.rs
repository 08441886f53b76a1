//! A fake [`Env`] for the loader's unit tests: files, folders, names and
//! certificates held in maps, so that no test touches the disk or DNS.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::env::{CertFacts, CertFault, Env};

#[derive(Debug, Default)]
pub(crate) struct FakeEnv {
    files: HashMap<PathBuf, Vec<u8>>,
    dirs: Vec<PathBuf>,
    names: HashMap<String, Vec<SocketAddr>>,
    /// By certificate path: what checking it against its key gives.
    certs: HashMap<PathBuf, Result<CertFacts, CertFault>>,
}

impl FakeEnv {
    /// A file holding `text`.
    pub(crate) fn file(mut self, path: &str, text: &str) -> Self {
        self.files.insert(path.into(), text.as_bytes().to_vec());
        self
    }

    /// A file holding `bytes`.
    pub(crate) fn bytes(mut self, path: &str, bytes: &[u8]) -> Self {
        self.files.insert(path.into(), bytes.to_vec());
        self
    }

    pub(crate) fn dir(mut self, path: &str) -> Self {
        self.dirs.push(path.into());
        self
    }

    /// `host_port` resolves to `addrs`.
    pub(crate) fn name(mut self, host_port: &str, addrs: &[&str]) -> Self {
        let addrs = addrs
            .iter()
            .map(|a| a.parse().expect("a socket address"))
            .collect();
        self.names.insert(host_port.into(), addrs);
        self
    }

    /// A certificate at `cert` with its key at `key` (both files present)
    /// that holds `names` and expires at `not_after`.
    pub(crate) fn cert(self, cert: &str, key: &str, names: &[&str], not_after: i64) -> Self {
        let facts = CertFacts {
            cert_names: names.iter().map(|n| n.to_string()).collect(),
            not_after,
            issuer: "Test CA".into(),
        };
        self.cert_result(cert, key, Ok(facts))
    }

    /// A certificate and key pair whose check fails with `fault`.
    pub(crate) fn bad_cert(self, cert: &str, key: &str, fault: CertFault) -> Self {
        self.cert_result(cert, key, Err(fault))
    }

    fn cert_result(mut self, cert: &str, key: &str, r: Result<CertFacts, CertFault>) -> Self {
        self.certs.insert(cert.into(), r);
        self.file(cert, "-----BEGIN CERTIFICATE-----")
            .file(key, "-----BEGIN PRIVATE KEY-----")
    }
}

impl Env for FakeEnv {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory (os error 2)"))
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.dirs.iter().any(|d| d == path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        if self.is_dir(path) {
            Ok(path.to_path_buf())
        } else {
            Err(io::Error::new(io::ErrorKind::NotFound, "not a folder"))
        }
    }

    fn resolve(&self, host_port: &str) -> io::Result<Vec<SocketAddr>> {
        if !host_port.contains(':') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid socket address",
            ));
        }
        self.names.get(host_port).cloned().ok_or_else(|| {
            io::Error::other("failed to lookup address information: Name or service not known")
        })
    }

    fn cores(&self) -> usize {
        4
    }

    fn inspect_cert(&self, cert: &Path, _: &[u8], _: &Path, _: &[u8]) -> Result<CertFacts, CertFault> {
        self.certs.get(cert).cloned().unwrap_or_else(|| {
            Err(CertFault::Cert(format!(
                "{} is not a certificate",
                cert.display()
            )))
        })
    }
}

/// The loader reaches files, names and certificates only through its
/// [`Env`]: these configs load with nothing on disk.
#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::model::ListenerKind;
    use crate::config::{load_file, load_str};

    const POOL: &str =
        "[[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"backend.test:80\"\n[[route]]\npool = \"p\"\n";

    fn env() -> FakeEnv {
        FakeEnv::default()
            .dir("/etc/rampart")
            .dir("/srv/www")
            .name("backend.test:80", &["192.0.2.7:80"])
            .cert(
                "/etc/rampart/site.pem",
                "/etc/rampart/site.key",
                &["Example.com"],
                2_000_000_000,
            )
            .file("/etc/rampart/token", "0123456789abcdef0123\n")
            .file("/etc/rampart/allow.txt", "# office\n10.0.0.0/8\n")
    }

    #[test]
    fn files_names_and_certificates_come_from_the_env() {
        let text = format!(
            "[admin]\ntoken_file = \"token\"\n\
             [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\nallow_file = \"allow.txt\"\n\
             [[listener.certificate]]\ncert = \"site.pem\"\nkey = \"site.key\"\n\
             [[origin]]\nname = \"o\"\naddress = \"127.0.0.1:0\"\nroot = \"/srv/www\"\n{POOL}"
        );
        let env = env().file("/etc/rampart/rampart.toml", &text);
        let m = load_file(Path::new("/etc/rampart/rampart.toml"), &env).expect("valid");
        assert_eq!(m.workers, 4, "one worker per core of the env");
        assert_eq!(m.admin.token.as_deref(), Some("0123456789abcdef0123"));
        assert_eq!(m.pools[0].servers[0].addr, "192.0.2.7:80".parse().expect("addr"));
        assert_eq!(m.listeners[0].clients.allow, ["10.0.0.0/8".parse().expect("net")]);
        let ListenerKind::Https(s) = &m.listeners[0].kind else {
            panic!("an https listener")
        };
        assert_eq!(s.certs[0].sni_names, ["example.com"]);
        assert_eq!(s.certs[0].not_after, 2_000_000_000);
        assert_eq!(&*s.certs[0].cert_pem.0, b"-----BEGIN CERTIFICATE-----");
    }

    #[test]
    fn what_the_env_refuses_is_located() {
        let https = "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
                     [[listener.certificate]]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
        let cases = [
            (
                FakeEnv::default().file("/etc/rampart/c.pem", "x"),
                format!("{https}{POOL}"),
                "t.toml:7:7: listener[0].certificate[0].key: cannot use private key /etc/rampart/k.pem: \
                 No such file or directory (os error 2)",
            ),
            (
                FakeEnv::default().bad_cert(
                    "/etc/rampart/c.pem",
                    "/etc/rampart/k.pem",
                    CertFault::Key("the key does not match".into()),
                ),
                format!("{https}{POOL}"),
                "t.toml:7:7: listener[0].certificate[0].key: the key does not match",
            ),
            (
                FakeEnv::default().bytes("/etc/rampart/allow.txt", &[0xff]),
                format!("[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:0\"\nallow_file = \"allow.txt\"\n{POOL}"),
                "t.toml:4:14: listener[0].allow_file: cannot read /etc/rampart/allow.txt: \
                 stream did not contain valid UTF-8",
            ),
        ];
        for (env, text, want) in cases {
            let env = env.dir("/etc/rampart").name("backend.test:80", &["192.0.2.7:80"]);
            match load_str(&text, "t.toml", Path::new("/etc/rampart"), &env) {
                Ok(_) => panic!("accepted:\n{text}"),
                Err(e) => assert_eq!(e.to_string(), want),
            }
        }
    }
}
