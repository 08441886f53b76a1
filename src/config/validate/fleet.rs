//! `[fleet]`: etcd's URLs, the prefix and node name, credentials and TLS
//! files read now (so that a bad path is an error naming its key).

use super::{Cx, R};
use crate::config::defaults as d;
use crate::config::{model, schema};

impl Cx<'_> {
    pub(super) fn fleet(&self, f: &schema::Fleet) -> R<model::FleetSettings> {
        let urls = f.etcd.get_ref();
        if urls.is_empty() {
            return Err(self.at(
                &f.etcd,
                "fleet.etcd",
                "name at least one etcd URL, e.g. \"http://127.0.0.1:2379\"",
            ));
        }
        let mut tls = None;
        for u in urls {
            let is_tls = match u.split_once("://") {
                Some(("http", rest)) if !rest.is_empty() => false,
                Some(("https", rest)) if !rest.is_empty() => true,
                _ => {
                    return Err(self.at(
                        &f.etcd,
                        "fleet.etcd",
                        format!("`{u}` is not an etcd URL: write http://HOST:PORT or https://HOST:PORT"),
                    ))
                }
            };
            if tls.is_some_and(|t| t != is_tls) {
                return Err(self.at(
                    &f.etcd,
                    "fleet.etcd",
                    "use http:// or https:// for every URL, not both",
                ));
            }
            tls = Some(is_tls);
        }
        let tls = tls.unwrap_or(false);
        let prefix = f
            .prefix
            .as_ref()
            .map_or(d::FLEET_PREFIX, |p| p.get_ref().as_str());
        if !prefix.starts_with('/') || prefix.len() < 2 {
            return Err(self.at_opt(&f.prefix, "fleet.prefix", "a key prefix such as \"/rampart\""));
        }
        let node = match &f.node {
            Some(n) => n.get_ref().clone(),
            None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
        };
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if node.is_empty() || !node.chars().all(valid) {
            return Err(self.at_opt(
                &f.node,
                "fleet.node",
                format!("`{node}` cannot name a node: letters, digits, `-`, `_` and `.` only"),
            ));
        }
        let password = self.secret(&f.password, &f.password_file, "fleet.", "password", false)?;
        let credentials = match (&f.username, password) {
            (Some(u), Some(p)) => Some((u.get_ref().clone(), p)),
            (None, None) => None,
            (Some(u), None) => {
                return Err(self.at(
                    u,
                    "fleet.username",
                    "a username needs `password` or `password_file`",
                ))
            }
            (None, Some(_)) => {
                let at = f.password.as_ref().or(f.password_file.as_ref());
                return Err(self.err(
                    at.map_or(0..0, |x| x.span()),
                    "fleet.password",
                    "a password needs `username`",
                ));
            }
        };
        let file = |v: &Option<toml::Spanned<String>>, key: &str| -> R<Option<Vec<u8>>> {
            let Some(v) = v else { return Ok(None) };
            let path = self.path(v.get_ref());
            self.env
                .read(&path)
                .map(Some)
                .map_err(|e| self.at(v, key, format!("cannot read {}: {e}", path.display())))
        };
        if !tls {
            for (v, key) in [
                (&f.ca, "fleet.ca"),
                (&f.cert, "fleet.cert"),
                (&f.key, "fleet.key"),
            ] {
                if let Some(v) = v {
                    return Err(self.at(v, key, "TLS settings need https:// etcd URLs"));
                }
            }
        }
        let ca_pem = file(&f.ca, "fleet.ca")?;
        let client_identity = match (file(&f.cert, "fleet.cert")?, file(&f.key, "fleet.key")?) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(self.at_opt(&f.cert, "fleet.cert", "a client certificate needs `key`"))
            }
            (None, Some(_)) => return Err(self.at_opt(&f.key, "fleet.key", "a client key needs `cert`")),
        };
        let timeout = self.nonzero_duration(&f.timeout, "fleet.timeout", d::FLEET_TIMEOUT)?;
        let secret_key = match &f.secret_key_file {
            None => None,
            Some(v) => {
                let text = file(&f.secret_key_file, "fleet.secret_key_file")?.unwrap_or_default();
                Some(parse_secret_key(&text).ok_or_else(|| {
                    self.at(
                        v,
                        "fleet.secret_key_file",
                        format!(
                            "{} must hold 64 hex digits (a 256-bit key), e.g. made by `openssl rand -hex 32`",
                            self.path(v.get_ref()).display()
                        ),
                    )
                })?)
            }
        };
        Ok(model::FleetSettings {
            endpoints: urls.clone(),
            prefix: prefix.trim_end_matches('/').to_string(),
            node,
            credentials,
            ca_pem,
            client_identity,
            timeout,
            secret_key,
        })
    }
}

/// 64 hex digits (surrounding white space allowed) as 32 bytes.
fn parse_secret_key(text: &[u8]) -> Option<[u8; 32]> {
    let hex = std::str::from_utf8(text).ok()?.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}
