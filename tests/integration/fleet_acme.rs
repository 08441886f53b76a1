//! Certificates once for a fleet: two instances, one etcd, Pebble. One
//! instance orders, the other serves the same certificate (same serial);
//! the CA's validation reaches the instance that did not order (the
//! answer was shared); etcd holds no private key in the clear; with the
//! instance that ordered gone, the other renews a 30-second certificate
//! before it expires. The internal CA is the fleet's too: `rampart ca
//! issue` on either node issues from the same CA.
//!
//! Pebble validates TLS-ALPN-01 at one address; in front of it a TCP relay
//! plays the floating address: it sends each connection to the instance
//! that is not ordering when both are up, else to the one alive.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;

use crate::acme::Pebble;
use crate::fleet::{node_file_with, Etcd};
use crate::support::*;

const SECRET_HEX: &str = "4f1c2a9e7b3d5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
const NAME: &str = "site.rampart.test";
const LEADER_KEY: &str = "/rampart/acme/leader/site";
const CERT_KEY: &str = "/rampart/acme/cert/site";

fn node_file(dir: &Path, etcd: &str, node: &str, key: &Path) -> PathBuf {
    node_file_with(
        dir,
        etcd,
        node,
        &format!("secret_key_file = \"{}\"\n", key.display()),
    )
}

/// (the node ordering, the node a relayed connection went to).
type Relayed = Arc<Mutex<Vec<(Option<String>, String)>>>;

/// The serial and expiry of the certificate `addr` serves for [`NAME`], if
/// it verifies against `root` (Pebble's).
async fn served_cert(addr: SocketAddr, root: &Path) -> Option<(Vec<u8>, i64)> {
    let tls = try_tls_connect(addr, NAME, root, &[b"http/1.1"]).await.ok()?;
    let der = tls.get_ref().1.peer_certificates()?.first()?.clone();
    let (_, c) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    Some((c.raw_serial().to_vec(), c.validity().not_after.timestamp()))
}

/// The public key of the last certificate of a PEM chain.
fn last_key(pem: &[u8]) -> Option<Vec<u8>> {
    let der = rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .last()?
        .ok()?;
    let (_, c) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    Some(c.tbs_certificate.subject_pki.raw.to_vec())
}

async fn site(app: &rampart::app::RunningApp) -> SocketAddr {
    app.app
        .listeners()
        .await
        .into_iter()
        .find(|l| l.name == "site")
        .map(|l| l.addr)
        .expect("the site listener")
}

/// Who is ordering now (the node holding the lead), if anyone.
async fn leader(etcd: &mut etcd_client::Client) -> Option<String> {
    let r = etcd.get(LEADER_KEY, None).await.ok()?;
    r.kvs()
        .first()
        .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
}

/// The relay in front of the instances (the floating address): for each
/// connection, records (the node ordering, the node it went to).
fn relay(
    listener: tokio::net::TcpListener,
    etcd: etcd_client::Client,
    nodes: Arc<Mutex<Vec<(String, SocketAddr)>>>,
    seen: Relayed,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let (mut etcd, nodes, seen) = (etcd.clone(), nodes.clone(), seen.clone());
            tokio::spawn(async move {
                let ordering = leader(&mut etcd).await;
                let mut order = nodes.lock().expect("nodes").clone();
                order.sort_by_key(|(n, _)| Some(n) == ordering.as_ref());
                for (node, addr) in order {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(addr).await {
                        seen.lock().expect("seen").push((ordering.clone(), node));
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                        return;
                    }
                }
            });
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_orders_a_certificate_once_shares_it_sealed_and_renews_it_without_the_instance_that_ordered()
{
    let work = tempfile::tempdir().expect("tempdir");
    let d = work.path();
    let etcd = Etcd::start(&d.join("etcd")).await;
    let url = etcd.url();
    let pebble = Pebble::start(d, Some(30)).await;
    let root = pebble.root(d).await;
    let key_file = d.join("fleet.key");
    std::fs::write(&key_file, format!("{SECRET_HEX}\n")).expect("key");
    let be = Backend::named("site").await;

    // The relay on the port Pebble validates at.
    let nodes = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut client = etcd_client::Client::connect([url.clone()], None)
        .await
        .expect("etcd client");
    let relay_task = relay(
        tokio::net::TcpListener::bind(("127.0.0.1", pebble.https_port))
            .await
            .expect("the relay binds Pebble's validation port"),
        client.clone(),
        nodes.clone(),
        seen.clone(),
    );

    // The fleet's configuration: an HTTPS listener whose certificate comes
    // from Pebble.
    let ops = d.join("ops");
    std::fs::create_dir_all(&ops).expect("ops");
    std::fs::write(
        ops.join("site.toml"),
        format!(
            "[admin]\naddress = \"127.0.0.1:0\"\n[fleet]\netcd = [\"{url}\"]\nsecret_key_file = \"{}\"\n\
             [[listener]]\nname = \"site\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
             [listener.acme]\ndirectory = \"https://127.0.0.1:{}/dir\"\nnames = [\"{NAME}\"]\n\
             directory_ca = \"{}\"\nchallenge = \"tls-alpn-01\"\n\
             [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
            key_file.display(),
            pebble.api_port,
            pebble.api_ca.display(),
            be.addr
        ),
    )
    .expect("revision");
    let (code, out, err) = rampart(&["fleet", "push", "-c", "site.toml"], &ops);
    assert_eq!(code, 0, "{out}{err}");

    let lb1 = start_app_file(&node_file(&d.join("lb1"), &url, "lb1", &key_file)).await;
    let lb2 = start_app_file(&node_file(&d.join("lb2"), &url, "lb2", &key_file)).await;
    let (a1, a2) = (site(&lb1).await, site(&lb2).await);
    nodes
        .lock()
        .expect("nodes")
        .extend([("lb1".to_string(), a1), ("lb2".to_string(), a2)]);

    // Both serve Pebble's certificate, the same one.
    let both = wait_until(Duration::from_secs(60), || async {
        let (c1, c2) = (served_cert(a1, &root).await, served_cert(a2, &root).await);
        c1.is_some() && c1 == c2
    })
    .await;
    let (c1, c2) = (served_cert(a1, &root).await, served_cert(a2, &root).await);
    assert!(
        both.is_some(),
        "the instances do not serve one certificate from Pebble: {c1:?} {c2:?}; relayed {:?}",
        seen.lock().expect("seen")
    );
    let (serial, not_after) = c1.expect("served");

    // One order: the certificate was stored once, by the instance that
    // held the lead, and the CA's validation went to the other one.
    let stored = client.get(CERT_KEY, None).await.expect("get");
    let version = stored.kvs().first().map(|kv| kv.version());
    assert_eq!(version, Some(1), "the certificate was not stored exactly once");
    let relayed = seen.lock().expect("seen").clone();
    let orderer = relayed
        .iter()
        .find_map(|(o, _)| o.clone())
        .expect("a validation came while an instance held the lead");
    assert!(
        relayed
            .iter()
            .any(|(o, to)| o.as_deref() == Some(orderer.as_str()) && *to != orderer),
        "no validation reached the instance that did not order: {relayed:?}"
    );

    // One internal CA for the fleet: both instances took the one in etcd,
    // and `rampart ca issue` issues from it on either node.
    let ca_of =
        |node: &str| std::fs::read_to_string(d.join(format!("{node}/state/tls/ca.pem"))).expect("ca.pem");
    assert_eq!(ca_of("lb1"), ca_of("lb2"), "two CAs in one fleet");
    for (node, name) in [("lb1", "api.internal"), ("lb2", "db.internal")] {
        let dir = d.join(node);
        let (code, out, err) = rampart(&["ca", "issue", name, "-c", "rampart.toml"], &dir);
        assert_eq!(code, 0, "{out}{err}");
        let chain = std::fs::read(dir.join(format!("state/tls/issued/{name}.pem"))).expect("issued");
        let issuer = last_key(&chain);
        assert!(
            issuer.is_some() && issuer == last_key(ca_of("lb1").as_bytes()),
            "{name} is not issued by the fleet's CA"
        );
    }
    assert!(
        client
            .get("/rampart/ca/internal", None)
            .await
            .expect("get")
            .kvs()
            .len()
            == 1,
        "the fleet's CA is not in etcd"
    );

    // Nothing private in the clear in etcd: no PEM key, no account key,
    // not the certificate key's bytes.
    let all = client
        .get("/", Some(etcd_client::GetOptions::new().with_prefix()))
        .await
        .expect("keyspace");
    let keys: Vec<String> = all
        .kvs()
        .iter()
        .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
        .collect();
    assert!(
        keys.iter().any(|k| k == CERT_KEY) && keys.iter().any(|k| k.starts_with("/rampart/acme/account/")),
        "{keys:?}"
    );
    let key_pem = std::fs::read(d.join(format!("{orderer}/state/acme/site/key.pem"))).expect("the kept key");
    let key_der = rustls_pki_types::PrivateKeyDer::from_pem_slice(&key_pem).expect("a key");
    let key_der = key_der.secret_der().to_vec();
    for kv in all.kvs() {
        let v = kv.value();
        let k = String::from_utf8_lossy(kv.key());
        for needle in [&b"PRIVATE KEY"[..], b"key_pkcs8", &key_der] {
            assert!(
                !v.windows(needle.len()).any(|w| w == needle),
                "{k} holds private key material in the clear"
            );
        }
    }

    // The instance that ordered goes; the other renews before expiry.
    let (gone, stays, at) = if orderer == "lb1" {
        (lb1, lb2, a2)
    } else {
        (lb2, lb1, a1)
    };
    gone.shutdown().await;
    let renewed = wait_until(Duration::from_secs(40), || async {
        served_cert(at, &root).await.is_some_and(|(s, _)| s != serial)
    })
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    assert!(
        renewed.is_some(),
        "the certificate was not renewed without {orderer}"
    );
    assert!(now < not_after, "renewed only after the old certificate expired");
    let stored = client.get(CERT_KEY, None).await.expect("get");
    assert_eq!(stored.kvs().first().map(|kv| kv.version()), Some(2));
    stays.shutdown().await;
    relay_task.abort();
}
