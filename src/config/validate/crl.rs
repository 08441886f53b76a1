//! Certificate revocation lists (`client_crl` on an https listener, `crl`
//! in `[pool.tls]`): each file read (PEM or DER), each list parsed, and
//! its issuer checked against the CA it is for, so that a list that could
//! never apply is an error at load rather than every certificate refused
//! at the first handshake.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use toml::Spanned;

use super::{Cx, R};
use crate::config::model;
use crate::config::schema::OneOrMany;

impl Cx<'_> {
    /// The revocation lists in `files` for certificates `roots` signed,
    /// and what an expired one means (`expired`, at `expired_key`).
    pub(super) fn revocation(
        &self,
        files: &Option<Spanned<OneOrMany>>,
        files_key: &str,
        expired: &Option<Spanned<String>>,
        expired_key: &str,
        roots: &model::TlsRoots,
    ) -> R<Option<model::Revocation>> {
        let Some(list) = files else {
            if let Some(e) = expired {
                let short = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
                return Err(self.at(
                    e,
                    expired_key,
                    format!("`{}` needs `{}`", short(expired_key), short(files_key)),
                ));
            }
            return Ok(None);
        };
        let enforce_expiry = match expired.as_ref().map(|e| e.get_ref().as_str()) {
            None | Some("fail_closed") => true,
            Some("fail_open") => false,
            Some(other) => {
                return Err(self.at_opt(
                    expired,
                    expired_key,
                    format!("unknown value `{other}`: use fail_closed or fail_open"),
                ))
            }
        };
        if list.get_ref().items().is_empty() {
            return Err(self.at(list, files_key, "name at least one revocation list file"));
        }
        let cas = ca_subjects(roots);
        let mut out = Vec::new();
        for name in list.get_ref().items() {
            let path = self.path(name);
            let bytes = self.env.read(&path).map_err(|e| {
                self.at(
                    list,
                    files_key,
                    format!("cannot read revocation list {}: {e}", path.display()),
                )
            })?;
            let fail = |why: String| self.at(list, files_key, format!("{}: {why}", path.display()));
            let ders = crl_ders(&bytes);
            if ders.is_empty() {
                return Err(fail("holds no certificate revocation list (PEM or DER)".into()));
            }
            let mut next_update: Option<i64> = None;
            for der in &ders {
                let (_, crl) = x509_parser::parse_x509_crl(der)
                    .map_err(|e| fail(format!("not a valid certificate revocation list: {e}")))?;
                if let Some(cas) = &cas {
                    let issuer = crl.issuer().as_raw();
                    if !cas.iter().any(|s| s.as_slice() == issuer) {
                        return Err(fail(format!(
                            "the list's issuer `{}` is not a CA of the certificates it is for",
                            crl.issuer()
                        )));
                    }
                }
                if let Some(t) = crl.next_update() {
                    let t = t.timestamp();
                    next_update = Some(next_update.map_or(t, |n| n.min(t)));
                }
            }
            out.push(model::CrlFile {
                path,
                ders,
                next_update,
            });
        }
        Ok(Some(model::Revocation {
            files: out,
            enforce_expiry,
        }))
    }
}

/// The lists in a file: PEM blocks, else the whole file as one DER list.
pub fn crl_ders(bytes: &[u8]) -> Vec<Vec<u8>> {
    let pem: Vec<Vec<u8>> = CertificateRevocationListDer::pem_slice_iter(bytes)
        .flatten()
        .map(|d| d.as_ref().to_vec())
        .collect();
    if !pem.is_empty() {
        return pem;
    }
    if x509_parser::parse_x509_crl(bytes).is_ok() {
        return vec![bytes.to_vec()];
    }
    Vec::new()
}

/// The subjects (DER) of the CA certificates in `roots`, when they are
/// known at load (a CA file); None for the internal CA and the host's store.
fn ca_subjects(roots: &model::TlsRoots) -> Option<Vec<Vec<u8>>> {
    let model::TlsRoots::File { pem, .. } = roots else {
        return None;
    };
    Some(
        CertificateDer::pem_slice_iter(&pem.0)
            .flatten()
            .filter_map(|c| {
                let (_, x) = x509_parser::parse_x509_certificate(c.as_ref()).ok()?;
                Some(x.subject().as_raw().to_vec())
            })
            .collect(),
    )
}
