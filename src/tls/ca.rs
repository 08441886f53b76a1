//! The local CA: on first run, rampart creates a private CA and a
//! certificate for `localhost`, `127.0.0.1` and `::1` in its state
//! directory, and reuses them later. Users point `curl --cacert` (or their
//! trust store) at the CA file.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls_pki_types::pem::PemObject;

use super::{LoadedCert, TlsError};

/// The generated material.
#[derive(Debug)]
pub struct LocalCert {
    /// The CA certificate clients should trust.
    pub ca_path: PathBuf,
    pub cert: LoadedCert,
    /// True when this call created the files.
    pub created: bool,
}

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";
const LEAF_CERT: &str = "localhost.pem";
const LEAF_KEY: &str = "localhost-key.pem";
/// A leaf closer than this to expiry is issued again.
const RENEW_BEFORE_SECS: i64 = 30 * 86_400;

/// Loads the local certificate from `state_dir/tls/`, creating the CA
/// and/or the leaf when missing or close to expiry.
pub fn ensure_local_cert(state_dir: &Path) -> Result<LocalCert, TlsError> {
    let dir = tls_dir(state_dir)?;
    let ca_path = dir.join(CA_CERT);
    let (leaf_path, leaf_key_path) = (dir.join(LEAF_CERT), dir.join(LEAF_KEY));

    if ca_path.exists() && leaf_path.exists() {
        let kept = match (std::fs::read(&leaf_path), std::fs::read(&leaf_key_path)) {
            (Ok(c), Ok(k)) => LoadedCert::from_pem(&leaf_path, &c, &leaf_key_path, &k).ok(),
            _ => None,
        };
        if let Some(cert) = kept {
            if cert.spec.not_after - now_secs() > RENEW_BEFORE_SECS {
                return Ok(LocalCert {
                    ca_path,
                    cert,
                    created: false,
                });
            }
        }
    }

    let gen = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let (ca_cert, ca_key) = load_or_create_ca(&dir)?;

    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen)?;
    let mut p = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .map_err(gen)?;
    p.distinguished_name.push(DnType::CommonName, "localhost");
    validity(&mut p, now_secs() - 86_400, now_secs() + 365 * 86_400);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = p.signed_by(&leaf_key, &ca_cert, &ca_key).map_err(gen)?;
    let chain = format!("{}{}", leaf.pem(), ca_cert.pem());
    let key_pem = leaf_key.serialize_pem();
    write_file(&leaf_path, chain.as_bytes(), 0o644)?;
    write_file(&leaf_key_path, key_pem.as_bytes(), 0o600)?;
    let cert = LoadedCert::from_pem(&leaf_path, chain.as_bytes(), &leaf_key_path, key_pem.as_bytes())?;
    Ok(LocalCert {
        ca_path,
        cert,
        created: true,
    })
}

/// The CA in `dir` (created when missing): its certificate, as issued
/// again from its key (same fields, so leaves chain to the file on disk),
/// and its key. Reusing an existing CA keeps clients that trust it working.
fn load_or_create_ca(dir: &Path) -> Result<(rcgen::Certificate, KeyPair), TlsError> {
    let gen = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let (ca_path, ca_key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    let (params, key) = match std::fs::read_to_string(&ca_key_path)
        .ok()
        .filter(|_| ca_path.exists())
    {
        Some(k) => (ca_params(), KeyPair::from_pem(&k).map_err(gen)?),
        None => {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen)?;
            let p = ca_params();
            let cert = p.clone().self_signed(&key).map_err(gen)?;
            write_file(&ca_path, cert.pem().as_bytes(), 0o644)?;
            write_file(&ca_key_path, key.serialize_pem().as_bytes(), 0o600)?;
            (p, key)
        }
    };
    let cert = params.self_signed(&key).map_err(gen)?;
    Ok((cert, key))
}

/// The internal CA's certificate file in `state_dir` (the CA is created
/// when missing).
pub fn ensure_ca(state_dir: &Path) -> Result<PathBuf, TlsError> {
    let dir = tls_dir(state_dir)?;
    load_or_create_ca(&dir)?;
    Ok(dir.join(CA_CERT))
}

/// The internal CA of `state_dir` (certificate, key; PEM), if it has one.
pub fn ca_pem(state_dir: &Path) -> Option<(Vec<u8>, Vec<u8>)> {
    let dir = state_dir.join("tls");
    Some((
        std::fs::read(dir.join(CA_CERT)).ok()?,
        std::fs::read(dir.join(CA_KEY)).ok()?,
    ))
}

/// Makes `cert` and `key` (PEM) the internal CA of `state_dir` (a fleet's
/// shared CA); whether it replaced another. The certificates rampart
/// issued itself from the previous CA are issued again from this one when
/// next needed (the local certificate at once).
pub fn install_ca(state_dir: &Path, cert: &[u8], key: &[u8]) -> Result<bool, TlsError> {
    let gen = |e: rcgen::Error| TlsError::Generate(e.to_string());
    // Only a pair that loads: a key that parses, a certificate beside it.
    KeyPair::from_pem(&String::from_utf8_lossy(key)).map_err(gen)?;
    if rustls_pki_types::CertificateDer::pem_slice_iter(cert)
        .next()
        .is_none()
    {
        return Err(TlsError::Config("the shared CA certificate is not PEM".into()));
    }
    if ca_pem(state_dir).is_some_and(|(c, k)| c == cert && k == key) {
        return Ok(false);
    }
    let dir = tls_dir(state_dir)?;
    write_file(&dir.join(CA_KEY), key, 0o600)?;
    write_file(&dir.join(CA_CERT), cert, 0o644)?;
    for leaf in [LEAF_CERT, LEAF_KEY] {
        let _ = std::fs::remove_file(dir.join(leaf));
    }
    Ok(true)
}

/// A certificate the internal CA issued, on disk.
#[derive(Debug)]
pub struct Issued {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// Expiry, seconds since the Unix epoch.
    pub not_after: i64,
    /// This call issued it (it was missing, or close to expiry).
    pub issued_now: bool,
}

/// How long the internal CA's certificates live, and how long before
/// expiry they are issued again.
const ISSUED_DAYS: i64 = 30;
const REISSUE_BEFORE_SECS: i64 = 10 * 86_400;
const CLIENT_NAME: &str = "rampart";
/// Where `rampart ca issue` writes, under `tls/`.
const ISSUED: &str = "issued";
/// Revoked serial numbers, and the CRL signed from them, under `tls/`.
const REVOKED: &str = "revoked.txt";
const CRL: &str = "crl.pem";

/// The client certificate rampart shows backends that ask for one
/// (`client_cert = "internal"`): issued by the internal CA, valid for 30
/// days, issued again within 10 days of expiry.
pub fn ensure_client_cert(state_dir: &Path) -> Result<Issued, TlsError> {
    // Its files are `client_cert_path` and `client-key.pem` beside it.
    ensure_leaf(state_dir, "client", &[CLIENT_NAME.to_string()], true)
}

/// A built-in origin's server certificate (`[origin.tls] cert =
/// "internal"`) for `names`: the same lifetime and renewal as the client
/// certificate, in `tls/origin-NAME.pem`.
pub fn ensure_origin_cert(state_dir: &Path, origin: &str, names: &[String]) -> Result<Issued, TlsError> {
    ensure_leaf(state_dir, &format!("origin-{origin}"), names, false)
}

/// `tls/STEM.pem` and its key, kept while they hold `names` and are more
/// than 10 days from expiry, issued again (30 days) otherwise.
fn ensure_leaf(state_dir: &Path, stem: &str, names: &[String], client: bool) -> Result<Issued, TlsError> {
    let dir = tls_dir(state_dir)?;
    let (cert_path, key_path) = (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}-key.pem")),
    );
    if let (Ok(c), Ok(k)) = (std::fs::read(&cert_path), std::fs::read(&key_path)) {
        if let Ok(cert) = LoadedCert::from_pem(&cert_path, &c, &key_path, &k) {
            let fresh = cert.spec.not_after - now_secs() > REISSUE_BEFORE_SECS;
            // Issued by the CA that is there now (a replaced CA issues
            // again): the chain ends with a certificate of the CA's key.
            let ca = std::fs::read(dir.join(CA_CERT)).unwrap_or_default();
            let ca_der = rustls_pki_types::CertificateDer::pem_slice_iter(&ca)
                .next()
                .and_then(Result::ok);
            let same_ca = match (ca_der.as_ref(), cert.key.cert.last()) {
                (Some(a), Some(b)) => {
                    let key = super::cert::spki_sha256;
                    key(a).is_some() && key(a) == key(b)
                }
                _ => false,
            };
            if fresh && same_ca && names.iter().all(|n| cert.spec.cert_names.contains(n)) {
                return Ok(Issued {
                    cert_path,
                    key_path,
                    not_after: cert.spec.not_after,
                    issued_now: false,
                });
            }
        }
    }
    let not_after = sign_leaf(&dir, names, client, ISSUED_DAYS, &cert_path, &key_path)?;
    Ok(Issued {
        cert_path,
        key_path,
        not_after,
        issued_now: true,
    })
}

/// Where rampart's client certificate is kept.
pub fn client_cert_path(state_dir: &Path) -> PathBuf {
    state_dir.join("tls").join("client.pem")
}

/// The internal CA's revocation list (`rampart ca revoke` writes it).
pub fn crl_path(state_dir: &Path) -> PathBuf {
    state_dir.join("tls").join(CRL)
}

/// Revokes a certificate `rampart ca issue` made: its serial number joins
/// `tls/revoked.txt`, and the CA signs a new `tls/crl.pem`, which rampart's
/// own servers check at their next handshake. Returns the serial (hex).
pub fn revoke(state_dir: &Path, name: &str) -> Result<String, TlsError> {
    let dir = tls_dir(state_dir)?;
    let path = dir.join(ISSUED).join(format!("{name}.pem"));
    let pem = std::fs::read(&path)
        .map_err(|e| TlsError::Config(format!("no certificate `{name}` ({}): {e}", path.display())))?;
    let der = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| TlsError::NoCert {
            path: path.display().to_string(),
        })?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| TlsError::CertParse {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let serial: String = cert.raw_serial().iter().map(|b| format!("{b:02x}")).collect();
    let list_path = dir.join(REVOKED);
    let mut list = std::fs::read_to_string(&list_path).unwrap_or_default();
    if !list
        .lines()
        .any(|l| l.split_whitespace().next() == Some(serial.as_str()))
    {
        list.push_str(&format!("{serial} {} {name}\n", now_secs()));
        write_file(&list_path, list.as_bytes(), 0o644)?;
    }
    write_crl(&dir, &list)?;
    Ok(serial)
}

/// Signs `tls/crl.pem` from the lines of `revoked.txt` (`SERIAL TIME NAME`).
fn write_crl(dir: &Path, list: &str) -> Result<(), TlsError> {
    let gen = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let (ca_cert, ca_key) = load_or_create_ca(dir)?;
    let day = |secs: i64| {
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        rcgen::date_time_ymd(y as i32, m as u8, d as u8)
    };
    let mut revoked = Vec::new();
    for line in list.lines() {
        let mut f = line.split_whitespace();
        let (Some(hex), Some(at)) = (f.next(), f.next().and_then(|t| t.parse::<i64>().ok())) else {
            continue;
        };
        let bytes: Option<Vec<u8>> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        let Some(bytes) = bytes else { continue };
        revoked.push(rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from_slice(&bytes),
            revocation_time: day(at),
            reason_code: None,
            invalidity_date: None,
        });
    }
    let params = rcgen::CertificateRevocationListParams {
        this_update: day(now_secs() - 86_400),
        next_update: day(now_secs() + 30 * 86_400),
        crl_number: rcgen::SerialNumber::from(u64::try_from(now_secs()).unwrap_or(0)),
        issuing_distribution_point: None,
        revoked_certs: revoked,
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(&ca_cert, &ca_key).map_err(gen)?;
    write_file(&dir.join(CRL), crl.pem().map_err(gen)?.as_bytes(), 0o644)
}

/// Issues a certificate from the internal CA (`rampart ca issue`): for
/// `names` (DNS names or IP addresses; the first is also the common name),
/// valid for `days`, for servers or, with `client`, for clients. Written to
/// `tls/issued/NAME.pem` (chain) and `NAME-key.pem` (mode 0600).
pub fn issue(
    state_dir: &Path,
    name: &str,
    names: &[String],
    days: i64,
    client: bool,
) -> Result<Issued, TlsError> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !name.starts_with('.');
    if !valid {
        return Err(TlsError::Config(format!(
            "`{name}` is not a certificate name: use letters, digits, `.`, `_` and `-`"
        )));
    }
    if !(1..=3650).contains(&days) {
        return Err(TlsError::Config(format!("{days} days: use 1 to 3650")));
    }
    let dir = tls_dir(state_dir)?;
    let out = dir.join(ISSUED);
    std::fs::create_dir_all(&out).map_err(|source| TlsError::Write {
        path: out.display().to_string(),
        source,
    })?;
    let names = if names.is_empty() {
        vec![name.to_string()]
    } else {
        names.to_vec()
    };
    let (cert_path, key_path) = (
        out.join(format!("{name}.pem")),
        out.join(format!("{name}-key.pem")),
    );
    let not_after = sign_leaf(&dir, &names, client, days, &cert_path, &key_path)?;
    Ok(Issued {
        cert_path,
        key_path,
        not_after,
        issued_now: true,
    })
}

/// A certificate the internal CA issued, as `rampart ca list` shows it.
#[derive(Debug)]
pub struct Listed {
    pub name: String,
    pub names: Vec<String>,
    pub not_after: i64,
}

/// The certificates in `tls/issued/`, by name.
pub fn list(state_dir: &Path) -> Result<Vec<Listed>, TlsError> {
    let dir = state_dir.join("tls").join(ISSUED);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
        let Some(name) = file.strip_suffix(".pem").filter(|n| !n.ends_with("-key")) else {
            continue;
        };
        let key_path = dir.join(format!("{name}-key.pem"));
        let (Ok(c), Ok(k)) = (std::fs::read(&path), std::fs::read(&key_path)) else {
            continue;
        };
        let cert = LoadedCert::from_pem(&path, &c, &key_path, &k)?;
        out.push(Listed {
            name: name.to_string(),
            names: cert.spec.cert_names.clone(),
            not_after: cert.spec.not_after,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Signs a new leaf with the CA in `dir` and writes the chain (leaf, CA)
/// and the key; returns its expiry.
fn sign_leaf(
    dir: &Path,
    names: &[String],
    client: bool,
    days: i64,
    cert_path: &Path,
    key_path: &Path,
) -> Result<i64, TlsError> {
    let gen = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let (ca_cert, ca_key) = load_or_create_ca(dir)?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen)?;
    let mut p = CertificateParams::new(names.to_vec()).map_err(gen)?;
    if let Some(first) = names.first() {
        p.distinguished_name.push(DnType::CommonName, first.as_str());
    }
    let not_after = now_secs() + days * 86_400;
    validity(&mut p, now_secs() - 3600, not_after);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![if client {
        rcgen::ExtendedKeyUsagePurpose::ClientAuth
    } else {
        rcgen::ExtendedKeyUsagePurpose::ServerAuth
    }];
    let cert = p.signed_by(&key, &ca_cert, &ca_key).map_err(gen)?;
    write_file(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(
        cert_path,
        format!("{}{}", cert.pem(), ca_cert.pem()).as_bytes(),
        0o644,
    )?;
    Ok(not_after)
}

/// Refuses private keys in the state directory (`tls/*-key.pem`,
/// `tls/issued/*-key.pem`) that group or others may read or write.
pub fn check_key_modes(state_dir: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = state_dir.join("tls");
    for d in [dir.clone(), dir.join(ISSUED)] {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let is_key = path
                .file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.ends_with("-key.pem"));
            let Ok(meta) = e.metadata() else { continue };
            let mode = meta.permissions().mode() & 0o777;
            if is_key && mode & 0o077 != 0 {
                return Err(TlsError::KeyMode {
                    path: path.display().to_string(),
                    mode,
                });
            }
        }
    }
    Ok(())
}

fn tls_dir(state_dir: &Path) -> Result<PathBuf, TlsError> {
    let dir = state_dir.join("tls");
    std::fs::create_dir_all(&dir).map_err(|source| TlsError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    Ok(dir)
}

/// The local CA's fields; the same every time, so that a CA loaded from
/// its key issues leaves that chain to the CA certificate on disk.
fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, "rampart local CA");
    p.distinguished_name.push(DnType::OrganizationName, "rampart");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut p, now_secs() - 86_400, now_secs() + 10 * 365 * 86_400);
    p
}

/// Writes a private key (or an account's credentials) atomically, 0600.
pub(super) fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    write_file(path, data, 0o600)
}

/// Writes a certificate atomically, 0644.
pub(super) fn write_public(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    write_file(path, data, 0o644)
}

/// Writes a file atomically: a temporary file, fsync, then rename.
fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    let werr = |source| TlsError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(werr)?;
    f.write_all(data).map_err(werr)?;
    f.sync_all().map_err(werr)?;
    std::fs::rename(&tmp, path).map_err(werr)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Sets a certificate's validity from two Unix times (day precision).
fn validity(p: &mut CertificateParams, from: i64, to: i64) {
    let date = |secs: i64| {
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        rcgen::date_time_ymd(y as i32, m as u8, d as u8)
    };
    p.not_before = date(from);
    p.not_after = date(to);
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }

    #[test]
    fn own_certificates_are_kept_until_close_to_expiry_or_the_ca_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ensure_client_cert(dir.path()).expect("issue");
        assert!(first.issued_now);
        assert!(!ensure_client_cert(dir.path()).expect("keep").issued_now);
        // A new CA: the client certificate is issued again, from it.
        std::fs::remove_file(dir.path().join("tls").join(CA_KEY)).expect("rm key");
        std::fs::remove_file(dir.path().join("tls").join(CA_CERT)).expect("rm ca");
        ensure_ca(dir.path()).expect("new CA");
        let again = ensure_client_cert(dir.path()).expect("reissue");
        assert!(again.issued_now);
        let last_key = |path: &Path| {
            let pem = std::fs::read(path).expect("pem");
            let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
                .flatten()
                .collect();
            super::super::cert::spki_sha256(certs.last().expect("a certificate"))
        };
        let ca = dir.path().join("tls").join(CA_CERT);
        assert_eq!(
            last_key(&again.cert_path),
            last_key(&ca),
            "issued from the new CA"
        );
    }

    #[test]
    fn creates_then_reuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ensure_local_cert(dir.path()).expect("create");
        assert!(first.created);
        assert!(first.cert.spec.cert_names.iter().any(|n| n == "localhost"));
        assert!(first.cert.spec.problems().is_empty());
        let again = ensure_local_cert(dir.path()).expect("reuse");
        assert!(!again.created);
        assert_eq!(again.cert.key.cert, first.cert.key.cert);
    }

    #[test]
    fn a_new_leaf_from_an_existing_ca_chains_to_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ensure_local_cert(dir.path()).expect("create");
        let ca_before = std::fs::read(&first.ca_path).expect("ca");
        // Lose the leaf: it is issued again by the same CA.
        std::fs::remove_file(dir.path().join("tls").join(LEAF_CERT)).expect("rm");
        let again = ensure_local_cert(dir.path()).expect("reissue");
        assert!(again.created);
        assert_eq!(
            std::fs::read(&again.ca_path).expect("ca"),
            ca_before,
            "the CA stays"
        );
        assert_ne!(again.cert.key.cert[0], first.cert.key.cert[0]);
        // The new leaf verifies against the CA file on disk.
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(&ca_before) {
            roots.add(c.expect("ca cert")).expect("root");
        }
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            std::sync::Arc::new(crate::tls::provider()),
        )
        .build()
        .expect("verifier");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let now = rustls_pki_types::UnixTime::now();
        use rustls::client::danger::ServerCertVerifier;
        verifier
            .verify_server_cert(
                &again.cert.key.cert[0],
                &again.cert.key.cert[1..],
                &name,
                &[],
                now,
            )
            .expect("chains to the CA");
    }
}
