//! Table tests of the loader, one file per section: small TOML snippets,
//! each with the model value it gives or the error it gets (line, column,
//! key and message). They run over a fake world ([`world`]): no files, no
//! name lookups.

mod alerts;
mod crl;
mod firewall;
mod health;
mod limits;
mod listeners;
mod observability;
mod origins;
mod pools;
mod routes;
mod rules;
mod runtime;
mod topology;

use std::fmt::Debug;
use std::path::Path;

use crate::config::env::CertFault;
use crate::config::fake_env::FakeEnv;
use crate::config::model::Model;

/// The config's folder in every test.
const BASE: &str = "/etc/rampart";

/// A pool whose one server needs no lookup, for tests of other sections.
const POOL: &str = "[[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"192.0.2.1:80\"\n";

/// Expiry of the good test certificate (2096).
const NOT_AFTER: i64 = 4_000_000_000;

/// What the tests' configs may name: the config folder and a site folder;
/// `backend.test:80` (one address) and `empty.test:80` (none); a good
/// certificate `site.pem`/`site.key`, a file that is no certificate
/// `bad.pem`/`bad.key`, and a key that does not match `other.pem`/`other.key`;
/// token and CIDR list files.
fn world() -> FakeEnv {
    FakeEnv::default()
        .dir(BASE)
        .dir("/srv/www")
        .dir("/etc/rampart/www")
        .name("backend.test:80", &["192.0.2.10:80"])
        .name("empty.test:80", &[])
        .cert(
            "/etc/rampart/site.pem",
            "/etc/rampart/site.key",
            &["example.com", "*.Example.com"],
            NOT_AFTER,
        )
        .bad_cert(
            "/etc/rampart/bad.pem",
            "/etc/rampart/bad.key",
            CertFault::Cert("/etc/rampart/bad.pem holds no PEM certificate".into()),
        )
        .bad_cert(
            "/etc/rampart/other.pem",
            "/etc/rampart/other.key",
            CertFault::Key("cannot use private key /etc/rampart/other.key: no match".into()),
        )
        .file("/etc/rampart/token", "  0123456789abcdef  \nsecond line\n")
        .file("/etc/rampart/short-token", "0123\n")
        .file(
            "/etc/rampart/allow.txt",
            "# office\n10.0.0.0/8\n\n192.0.2.1 # one host\n",
        )
        .file("/etc/rampart/bad-allow.txt", "10.0.0.0/8\nnope\n")
        .file("/etc/rampart/monitor.pw", "s3cret\nignored\n")
        .file(
            "/etc/rampart/fleet.key",
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
        )
        .file("/etc/rampart/short.key", "0001020304\n")
}

/// Loads `text` as `t.toml` in [`BASE`]; an error without the file name
/// (`line:column: key: message`).
fn load(text: &str) -> Result<Model, String> {
    crate::config::load_str(text, "t.toml", Path::new(BASE), &world()).map_err(|e| {
        let e = e.to_string();
        e.strip_prefix("t.toml:").map_or(e.clone(), str::to_string)
    })
}

/// Each case loads, and `get` of its model is the value given.
fn loads<T: PartialEq + Debug>(get: impl Fn(&Model) -> T, cases: Vec<(&str, String, T)>) {
    let mut problems = Vec::new();
    for (what, text, want) in cases {
        match load(&text) {
            Ok(m) if get(&m) == want => {}
            Ok(m) => problems.push(format!("{what}:\n  got  {:?}\n  want {want:?}", get(&m))),
            Err(e) => problems.push(format!("{what}: refused: {e}\n{text}")),
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// Each case is refused with exactly the error given
/// (`line:column: key: message`).
fn refuses(cases: Vec<(&str, String, &str)>) {
    let mut problems = Vec::new();
    for (what, text, want) in cases {
        match load(&text) {
            Err(e) if e == want => {}
            Err(e) => problems.push(format!("{what}:\n  got  {e}\n  want {want}")),
            Ok(_) => problems.push(format!("{what}: accepted:\n{text}")),
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}
