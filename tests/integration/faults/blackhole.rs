//! A server that goes dark: its packets dropped (no reset), as a hung host
//! or a network partition looks. Run in a network namespace of the test's
//! own, where nftables drops the server's packets.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::servers;
use crate::netns::Netns;
use crate::support::*;

const PER_TRY: Duration = Duration::from_millis(300);
const CONNECT: Duration = Duration::from_millis(500);
const CHECK_INTERVAL: Duration = Duration::from_millis(500);
const CHECK_TIMEOUT: Duration = Duration::from_millis(300);
const EJECTION: Duration = Duration::from_secs(3);
const DARK: Duration = Duration::from_secs(2);

/// What the clients saw.
#[derive(Debug, Default)]
struct Seen {
    ok: usize,
    failed: Vec<String>,
    slowest: Duration,
}

/// `clients` loops, each one GET to `path` every 20 ms on its own
/// keep-alive connection, until `until`.
async fn paced_load(web: SocketAddr, path: &'static str, clients: usize, until: Instant) -> Seen {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let loops = (0..clients).map(|_| {
        let seen = seen.clone();
        async move {
            let mut c = h1(web).await;
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            while Instant::now() < until {
                tick.tick().await;
                let t = Instant::now();
                let r = c.go(get(path, "x")).await;
                let took = t.elapsed();
                let lost = {
                    let mut s = seen.lock().expect("lock");
                    s.slowest = s.slowest.max(took);
                    match r {
                        Ok(resp) if resp.status() == 200 => {
                            s.ok += 1;
                            false
                        }
                        Ok(resp) => {
                            s.failed.push(format!("{} after {took:?}", resp.status()));
                            false
                        }
                        Err(e) => {
                            s.failed.push(format!("{e} after {took:?}"));
                            true
                        }
                    }
                };
                if lost {
                    c = h1(web).await;
                }
            }
        }
    });
    futures_util::future::join_all(loops).await;
    let s = std::mem::take(&mut *seen.lock().expect("lock"));
    s
}

/// About 400 GETs a second over two pools of four servers; one server of
/// each goes dark for two seconds. With `per_try_timeout` no request
/// fails, none waits longer than the per-try timeout plus the connect
/// timeout, each dark server is ejected once (failures of requests sent
/// before the ejection do not extend it), and once it answers again it is
/// back within a check interval (pool with a check) or within its
/// ejection time (pool without).
#[test]
fn a_dark_server_costs_no_request_and_is_ejected_once() {
    let ns = Netns::new("dark");
    let ns_name = ns.name.clone();
    let report = ns.run(move || async move {
        let mut backends = Vec::new();
        for name in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            backends.push(Backend::named(name).await);
        }
        let addrs: Vec<(&str, SocketAddr)> = ["a", "b", "c", "d", "e", "f", "g", "h"]
            .into_iter()
            .zip(backends.iter().map(|b| b.addr))
            .collect();
        let toml = format!(
            "[timeouts]\nconnect = \"{}ms\"\n\
             [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
             [[pool]]\nname = \"checked\"\nper_try_timeout = \"{}ms\"\n\
             [pool.health_check]\ntype = \"http\"\npath = \"/\"\ninterval = \"{}ms\"\ntimeout = \"{}ms\"\nrise = 1\nfall = 2\n\
             {}\
             [[pool]]\nname = \"plain\"\nper_try_timeout = \"{}ms\"\n\
             [pool.outlier]\nbase_ejection_time = \"{}s\"\n{}\
             [[route]]\npath = \"/checked\"\npool = \"checked\"\n[[route]]\npath = \"/plain\"\npool = \"plain\"\n",
            CONNECT.as_millis(),
            PER_TRY.as_millis(),
            CHECK_INTERVAL.as_millis(),
            CHECK_TIMEOUT.as_millis(),
            servers(&addrs[..4]),
            PER_TRY.as_millis(),
            EJECTION.as_secs(),
            servers(&addrs[4..]),
        );
        let app = start_app(&toml, std::path::Path::new(".")).await;
        let (web, admin_addr) = (listener(&app, "web"), app.admin().expect("admin"));
        wait_ready(admin_addr).await;
        let until = Instant::now() + Duration::from_secs(9);
        let checked = tokio::spawn(paced_load(web, "/checked", 4, until));
        let plain = tokio::spawn(paced_load(web, "/plain", 4, until));
        tokio::time::sleep(Duration::from_secs(1)).await;
        // a and e go dark: every packet to or from their ports dropped.
        let (a, e) = (addrs[0].1.port(), addrs[4].1.port());
        let rules = format!(
            "table inet dark {{\n chain out {{\n  type filter hook output priority 0;\n  \
             tcp dport {{ {a}, {e} }} drop\n  tcp sport {{ {a}, {e} }} drop\n }}\n}}\n"
        );
        Netns::nft(&ns_name, &rules);
        tokio::time::sleep(DARK).await;
        let lit = Instant::now();
        Netns::exec(&ns_name, "nft", &["delete", "table", "inet", "dark"]);
        // Back in rotation: `available` in the admin API.
        let back = |pool: &'static str, server: &'static str| async move {
            wait_until(Duration::from_secs(8), || async {
                server_info(admin_addr, pool, server)
                    .await
                    .is_some_and(|s| s["available"] == true)
            })
            .await
            .map(|_| lit.elapsed())
        };
        let (checked_back, plain_back) = tokio::join!(back("checked", "a"), back("plain", "e"));
        let checked = checked.await.expect("load");
        let plain = plain.await.expect("load");
        let text = metrics(admin_addr).await;
        let ejections = |pool: &str, server: &str| {
            metric(
                &text,
                &format!("rampart_backend_ejections_total{{pool=\"{pool}\",server=\"{server}\"}}"),
            )
        };
        let report = (
            checked,
            plain,
            ejections("checked", "a"),
            ejections("plain", "e"),
            checked_back,
            plain_back,
        );
        app.shutdown().await;
        drop(backends);
        report
    });
    let (checked, plain, ej_checked, ej_plain, checked_back, plain_back) = report;
    eprintln!(
        "checked: {} ok, slowest {:?}; plain: {} ok, slowest {:?}; back after {checked_back:?} / {plain_back:?}",
        checked.ok, checked.slowest, plain.ok, plain.slowest
    );
    for (name, seen) in [("checked", &checked), ("plain", &plain)] {
        assert!(seen.failed.is_empty(), "{name}: failed {:?}", seen.failed);
        assert!(seen.ok > 1000, "{name}: only {} requests", seen.ok);
        // A try on the dark server, then one elsewhere (which may need a
        // new connection); a margin for a loaded machine.
        assert!(
            seen.slowest <= PER_TRY + CONNECT + Duration::from_millis(300),
            "{name}: a request took {:?}",
            seen.slowest
        );
    }
    assert_eq!(ej_checked, Some(1.0), "the checked pool's dark server");
    assert_eq!(ej_plain, Some(1.0), "the plain pool's dark server");
    // A probe sent while it was dark fails (its SYN is retransmitted only
    // after a second), so: that probe's timeout, then one interval.
    let checked_back = checked_back.expect("the checked server came back");
    assert!(
        checked_back <= CHECK_TIMEOUT + CHECK_INTERVAL + Duration::from_millis(400),
        "checked server back after {checked_back:?}"
    );
    let plain_back = plain_back.expect("the plain server came back");
    assert!(
        plain_back <= EJECTION + Duration::from_millis(500),
        "plain server back after {plain_back:?}"
    );
}
