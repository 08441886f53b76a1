//! Revocation lists: read in PEM or DER, checked against the CA they are
//! for, and refused with the key named when they cannot apply.

use super::*;
use crate::config::model;

/// A CA, a list it signed (PEM and DER), and a list another CA signed.
struct Pki {
    ca_pem: String,
    crl_pem: String,
    crl_der: Vec<u8>,
    foreign_pem: String,
    expired_pem: String,
}

fn ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    (p.self_signed(&key).expect("ca"), key)
}

fn crl(ca: &(rcgen::Certificate, rcgen::KeyPair), next_year: i32) -> rcgen::CertificateRevocationList {
    rcgen::CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2020, 1, 1),
        next_update: rcgen::date_time_ymd(next_year, 1, 1),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from(7u64),
            revocation_time: rcgen::date_time_ymd(2020, 1, 1),
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&ca.0, &ca.1)
    .expect("crl")
}

fn pki() -> Pki {
    let ours = ca("client CA");
    let theirs = ca("someone else");
    let good = crl(&ours, 2090);
    Pki {
        ca_pem: ours.0.pem(),
        crl_pem: good.pem().expect("pem"),
        crl_der: good.der().to_vec(),
        foreign_pem: crl(&theirs, 2090).pem().expect("pem"),
        expired_pem: crl(&ours, 2021).pem().expect("pem"),
    }
}

fn load_with(p: &Pki, text: &str) -> Result<Model, String> {
    let env = world()
        .file("/etc/rampart/clients-ca.pem", &p.ca_pem)
        .file("/etc/rampart/clients.crl.pem", &p.crl_pem)
        .bytes("/etc/rampart/clients.crl", &p.crl_der)
        .file("/etc/rampart/foreign.crl.pem", &p.foreign_pem)
        .file("/etc/rampart/expired.crl.pem", &p.expired_pem)
        .file("/etc/rampart/garbage.crl", "not a list");
    crate::config::load_str(text, "t.toml", Path::new(BASE), &env).map_err(|e| {
        let e = e.to_string();
        e.strip_prefix("t.toml:").map_or(e.clone(), str::to_string)
    })
}

fn listener(extra: &str) -> String {
    format!(
        "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:8443\"\nprotocol = \"https\"\n\
         client_auth = \"required\"\nclient_ca = \"clients-ca.pem\"\n{extra}"
    )
}

fn revocation(m: &Model) -> Option<model::Revocation> {
    match &m.listeners[0].kind {
        model::ListenerKind::Https(s) => s.client_auth.as_ref()?.revocation.as_deref().cloned(),
        model::ListenerKind::Http { .. } => None,
    }
}

#[test]
fn lists_load_in_pem_and_der_and_default_to_fail_closed() {
    let p = pki();
    let m = load_with(
        &p,
        &listener("client_crl = [\"clients.crl.pem\", \"clients.crl\"]\n"),
    )
    .expect("loads");
    let r = revocation(&m).expect("revocation");
    assert!(r.enforce_expiry);
    assert_eq!(r.files.len(), 2);
    assert_eq!(r.files[0].ders, r.files[1].ders, "the same list, PEM and DER");
    assert!(r.files[0].next_update.is_some_and(|t| t > 3_000_000_000));
    let m = load_with(
        &p,
        &listener("client_crl = \"clients.crl.pem\"\ncrl_expired = \"fail_open\"\n"),
    )
    .expect("loads");
    assert!(!revocation(&m).expect("revocation").enforce_expiry);
    // An expired list loads (`rampart check` warns about it: tested with
    // the command, in tests/integration/revocation.rs).
    let m = load_with(&p, &listener("client_crl = \"expired.crl.pem\"\n")).expect("loads");
    let r = revocation(&m).expect("revocation");
    assert!(r.files[0].next_update.is_some_and(|t| t < 1_700_000_000));
}

#[test]
fn lists_that_cannot_apply_are_refused() {
    let p = pki();
    let cases = [
        (
            "a missing file",
            listener("client_crl = \"nowhere.crl\"\n"),
            "7:14: listener[0].client_crl: cannot read revocation list /etc/rampart/nowhere.crl: No such file or directory (os error 2)",
        ),
        (
            "a file that is no list",
            listener("client_crl = \"garbage.crl\"\n"),
            "7:14: listener[0].client_crl: /etc/rampart/garbage.crl: holds no certificate revocation list (PEM or DER)",
        ),
        (
            "another CA's list",
            listener("client_crl = [\"foreign.crl.pem\"]\n"),
            "7:14: listener[0].client_crl: /etc/rampart/foreign.crl.pem: the list's issuer `CN=someone else` is not a CA of the certificates it is for",
        ),
        (
            "an unknown expiry choice",
            listener("client_crl = \"clients.crl.pem\"\ncrl_expired = \"ignore\"\n"),
            "8:15: listener[0].crl_expired: unknown value `ignore`: use fail_closed or fail_open",
        ),
        (
            "crl_expired without lists",
            listener("crl_expired = \"fail_open\"\n"),
            "7:15: listener[0].crl_expired: `crl_expired` needs `client_crl`",
        ),
        (
            "a list without client certificates",
            "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:8443\"\nprotocol = \"https\"\nclient_crl = \"clients.crl.pem\"\n".into(),
            "5:14: listener[0].client_crl: `client_crl` is for client certificates: add `client_auth` and `client_ca`",
        ),
        (
            "a pool's list from another CA",
            format!(
                "{POOL}[pool.tls]\nca = \"clients-ca.pem\"\ncrl = \"foreign.crl.pem\"\n"
            ),
            "7:7: pool[0].tls.crl: /etc/rampart/foreign.crl.pem: the list's issuer `CN=someone else` is not a CA of the certificates it is for",
        ),
    ];
    let mut problems = Vec::new();
    for (what, text, want) in cases {
        match load_with(&p, &text) {
            Err(e) if e == want => {}
            Err(e) => problems.push(format!("{what}:\n  got  {e}\n  want {want}")),
            Ok(_) => problems.push(format!("{what}: accepted:\n{text}")),
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}
