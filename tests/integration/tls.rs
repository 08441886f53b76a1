//! TLS termination: the generated local CA, ALPN (HTTP/1.1 and HTTP/2),
//! SNI certificate selection and protocol versions.

use std::path::Path;
use std::sync::Arc;

use http::Request;

use crate::support::*;

const POOL: &str = "[[route]]\npool = \"p\"\n";

fn pool(be: &Backend) -> String {
    format!(
        "[[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{}\"\n",
        be.addr
    )
}

#[tokio::test]
async fn generated_ca_serves_http1_and_http2() {
    let be =
        Backend::start(|req| async move { http::Response::new(full(format!("{:?}", req.uri().path()))) })
            .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[runtime]\nstate_dir = \"state\"\n[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\nhsts_max_age = \"365d\"\n{}{POOL}",
        pool(&be)
    );
    let app = start_app(&toml, dir.path()).await;
    let ca = app.local_ca.clone().expect("a local CA was created");
    assert!(ca.starts_with(dir.path().join("state")));
    let addr = listener(&app, "tls");

    // HTTP/2 when the client offers it.
    let tls = tls_connect(addr, "localhost", &ca, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let mut h2c = h2_over(tls).await;
    let req = Request::get(format!("https://localhost:{}/two", addr.port()))
        .body(full(""))
        .expect("req");
    let resp = h2c.go(req).await.expect("h2 response");
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let (status, headers, body) = read(resp).await;
    assert_eq!((status, body.as_str()), (200, "\"/two\""));
    assert_eq!(headers["strict-transport-security"], "max-age=31536000");

    // HTTP/1.1 when it does not.
    let tls = tls_connect(addr, "localhost", &ca, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut h1c = h1_over(tls).await;
    let (status, _, body) = read(h1c.go(get("/one", "localhost")).await.expect("response")).await;
    assert_eq!((status, body.as_str()), (200, "\"/one\""));
    app.shutdown().await;

    // A second start reuses the CA and certificate.
    let before = std::fs::read(&ca).expect("ca");
    let app = start_app(&toml, dir.path()).await;
    assert_eq!(
        std::fs::read(app.local_ca.clone().expect("ca")).expect("ca"),
        before
    );
    app.shutdown().await;
}

#[tokio::test]
async fn tls12_client_gets_a_modern_suite_and_tls11_is_not_offered() {
    let be = Backend::named("be").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[runtime]\nstate_dir = \"state\"\n[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\n{}{POOL}",
        pool(&be)
    );
    let app = start_app(&toml, dir.path()).await;
    let ca = app.local_ca.clone().expect("ca");
    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for c in rustls_pki_types::CertificateDer::pem_file_iter(&ca).expect("ca") {
        roots.add(c.expect("cert")).expect("root");
    }
    let cfg =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .expect("tls12")
            .with_root_certificates(roots)
            .with_no_client_auth();
    let stream = tokio::net::TcpStream::connect(listener(&app, "tls"))
        .await
        .expect("connect");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").expect("name"),
            stream,
        )
        .await
        .expect("TLS 1.2 handshake");
    let conn = tls.get_ref().1;
    assert_eq!(conn.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_2));
    let suite = format!("{:?}", conn.negotiated_cipher_suite().expect("suite").suite());
    assert!(
        suite.starts_with("TLS_ECDHE_") && (suite.contains("GCM") || suite.contains("CHACHA20")),
        "{suite}"
    );

    // A TLS 1.1 ClientHello is refused: the server answers with an alert, never a ServerHello.
    let resp = raw(listener(&app, "tls"), &tls11_client_hello()).await;
    assert!(
        resp.as_bytes().first() != Some(&0x16),
        "server answered a TLS 1.1 hello with a handshake: {resp:?}"
    );

    // Handshakes are counted by version, failures too; the certificate's expiry is reported.
    let mut c = h1(app.admin().expect("admin")).await;
    let stats: serde_json::Value =
        serde_json::from_str(&read(c.go(get("/api/stats", "x")).await.expect("stats")).await.2)
            .expect("json");
    let l = stats["listeners"]
        .as_array()
        .and_then(|l| l.iter().find(|x| x["name"] == "tls"))
        .cloned()
        .expect("listener");
    assert_eq!(l["tls"]["handshakes_tls12"], 1, "{l}");
    assert_eq!(l["tls"]["failures"], 1, "{l}");
    let left = l["certificates"][0]["expires_in_seconds"]
        .as_i64()
        .expect("expiry");
    assert!(
        left > 300 * 86_400,
        "the local certificate is valid for about a year: {left}"
    );
    app.shutdown().await;
}

/// A minimal TLS 1.1 ClientHello offering only TLS 1.1 and an AES-CBC suite.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[0x11; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x02, 0x00, 0x2f]); // TLS_RSA_WITH_AES_128_CBC_SHA
    body.extend_from_slice(&[0x01, 0x00]); // compression: null
    let mut hs = vec![0x01, 0x00, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

/// A test CA and two certificates it signs, written under `dir`.
pub fn issue_certs(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = p.self_signed(&ca_key).expect("ca");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
    for name in ["alpha.test", "beta.test"] {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec![name.to_string()])
            .expect("params")
            .signed_by(&key, &ca, &ca_key)
            .expect("sign");
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write");
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write");
    }
}

#[tokio::test]
async fn sni_selects_the_certificate() {
    let be = Backend::named("be").await;
    let dir = tempfile::tempdir().expect("tempdir");
    issue_certs(dir.path());
    let toml = format!(
        "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
         [[listener.certificate]]\ncert = \"alpha.test.pem\"\nkey = \"alpha.test.key\"\n\
         [[listener.certificate]]\ncert = \"beta.test.pem\"\nkey = \"beta.test.key\"\n{}{POOL}",
        pool(&be)
    );
    let app = start_app(&toml, dir.path()).await;
    let addr = listener(&app, "tls");
    let ca = dir.path().join("ca.pem");
    for (sni, want) in [
        ("alpha.test", "alpha.test"),
        ("beta.test", "beta.test"),
        ("BETA.test", "beta.test"),
    ] {
        let tls = tls_connect(addr, sni, &ca, &[b"http/1.1"]).await;
        let cert = tls.get_ref().1.peer_certificates().expect("certs")[0].clone();
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).expect("parse");
        let san = parsed
            .subject_alternative_name()
            .expect("san")
            .expect("san present");
        let names: Vec<String> = san.value.general_names.iter().map(|n| format!("{n}")).collect();
        assert!(names.iter().any(|n| n.contains(want)), "SNI {sni} got {names:?}");
    }
    // An unknown name gets the default (first) certificate.
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let cfg =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny))
            .with_no_client_auth();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(
            rustls_pki_types::ServerName::try_from("unknown.test").expect("name"),
            stream,
        )
        .await
        .expect("handshake");
    let cert = tls.get_ref().1.peer_certificates().expect("certs")[0].clone();
    assert_eq!(
        cert.as_ref(),
        std::fs::read(dir.path().join("alpha.test.pem"))
            .map(|pem| {
                use rustls_pki_types::pem::PemObject;
                rustls_pki_types::CertificateDer::from_pem_slice(&pem)
                    .expect("der")
                    .as_ref()
                    .to_vec()
            })
            .expect("read")
    );
    app.shutdown().await;
}

/// Accepts any server certificate (only to look at which one was sent).
#[derive(Debug)]
struct AcceptAny;

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
