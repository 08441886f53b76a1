//! `[[pool]]` and `[[pool.server]]`: picking, protocol, limits, retries,
//! servers.

use std::time::Duration;

use http::HeaderName;

use super::{loads, refuses, POOL};
use crate::config::model::{Algorithm, HashKey, Outlier, Pool, RetryBudget, Server, UpstreamProtocol};

/// A pool `p` with `more` keys and one server `192.0.2.1:80`.
fn pool(more: &str) -> String {
    format!("[[pool]]\nname = \"p\"\n{more}[[pool.server]]\naddress = \"192.0.2.1:80\"\n")
}

fn server(name: &str, addr: &str) -> Server {
    Server {
        name: name.into(),
        addr: addr.parse().expect("an address"),
        origin: None,
        weight: 1,
        max_requests: 0,
        tls_name: addr.rsplit_once(':').map_or(addr, |(h, _)| h).to_string(),
    }
}

fn defaults() -> Pool {
    Pool {
        name: "p".into(),
        algorithm: Algorithm::RoundRobin,
        hash_key: HashKey::ClientIp,
        sticky_cookie: None,
        protocol: UpstreamProtocol::Http1,
        max_idle_per_server: 256,
        max_requests: 0,
        slow_start: Duration::ZERO,
        retries: 2,
        per_try_timeout: None,
        retry_budget: RetryBudget {
            ratio: 0.2,
            min_per_second: 10,
        },
        health_check: None,
        outlier: Outlier::default(),
        tls: None,
        servers: vec![server("192.0.2.1:80", "192.0.2.1:80")],
    }
}

#[test]
fn pools() {
    loads(
        |m| m.pools[0].clone(),
        vec![
            ("defaults", POOL.into(), defaults()),
            (
                "hashing on a header",
                pool("algorithm = \"hash\"\nhash_key = \"header:X-User\"\n"),
                Pool {
                    algorithm: Algorithm::Hash,
                    hash_key: HashKey::Header(HeaderName::from_static("x-user")),
                    ..defaults()
                },
            ),
            (
                "hashing on a cookie",
                pool("algorithm = \"hash\"\nhash_key = \"cookie:uid\"\n"),
                Pool {
                    algorithm: Algorithm::Hash,
                    hash_key: HashKey::Cookie("uid".into()),
                    ..defaults()
                },
            ),
            (
                "the other settings",
                pool(
                    "algorithm = \"p2c_ewma\"\nsticky_cookie = \"srv\"\nprotocol = \"h2c\"\n\
                     max_idle_per_server = 0\nmax_requests = 100\nslow_start = \"30s\"\nretries = 10\n\
                     retry_budget_ratio = 1.0\nretry_budget_min_per_second = 0\nper_try_timeout = \"750ms\"\n",
                ),
                Pool {
                    algorithm: Algorithm::P2cEwma,
                    sticky_cookie: Some("srv".into()),
                    protocol: UpstreamProtocol::H2c,
                    max_idle_per_server: 0,
                    max_requests: 100,
                    slow_start: Duration::from_secs(30),
                    retries: 10,
                    per_try_timeout: Some(Duration::from_millis(750)),
                    retry_budget: RetryBudget {
                        ratio: 1.0,
                        min_per_second: 0,
                    },
                    ..defaults()
                },
            ),
            (
                "no retries, no budget share",
                pool("retries = 0\nretry_budget_ratio = 0.0\n"),
                Pool {
                    retries: 0,
                    retry_budget: RetryBudget {
                        ratio: 0.0,
                        min_per_second: 10,
                    },
                    ..defaults()
                },
            ),
        ],
    );
    for (name, a) in [
        ("round_robin", Algorithm::RoundRobin),
        ("weighted", Algorithm::Weighted),
        ("least_requests", Algorithm::LeastRequests),
        ("p2c_ewma", Algorithm::P2cEwma),
        ("hash", Algorithm::Hash),
    ] {
        loads(
            |m| m.pools[0].algorithm,
            vec![(name, pool(&format!("algorithm = \"{name}\"\n")), a)],
        );
    }
}

#[test]
fn servers() {
    loads(
        |m| m.pools[0].servers.clone(),
        vec![
            (
                "names, weights and limits",
                "[[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"a\"\naddress = \"backend.test:80\"\n\
                 weight = 10000\nmax_requests = 5\n[[pool.server]]\naddress = \"192.0.2.2:80\"\nweight = 1\n"
                    .into(),
                vec![
                    Server {
                        weight: 10_000,
                        max_requests: 5,
                        tls_name: "backend.test".into(),
                        ..server("a", "192.0.2.10:80")
                    },
                    server("192.0.2.2:80", "192.0.2.2:80"),
                ],
            ),
            (
                "an origin of this file, named after it",
                "[[origin]]\nname = \"o\"\naddress = \"127.0.0.1:9000\"\ndemo = true\n\
                 [[pool]]\nname = \"p\"\n[[pool.server]]\norigin = \"o\"\n"
                    .into(),
                vec![Server {
                    origin: Some("o".into()),
                    ..server("o", "127.0.0.1:9000")
                }],
            ),
        ],
    );
}

#[test]
fn pool_mistakes() {
    refuses(vec![
        (
            "a name twice",
            format!("{POOL}{POOL}"),
            "6:8: pool[1].name: pool name `p` is used twice",
        ),
        (
            "no server",
            "[[pool]]\nname = \"p\"\n".into(),
            "2:8: pool[0].server: pool `p` has no servers: add at least one [[pool.server]]",
        ),
        (
            "an empty server list",
            "[[pool]]\nname = \"p\"\nserver = []\n".into(),
            "3:10: pool[0].server: pool `p` has no servers: add at least one [[pool.server]]",
        ),
        (
            "an unknown algorithm",
            pool("algorithm = \"random\"\n"),
            "3:13: pool[0].algorithm: unknown algorithm `random`: use round_robin, weighted, least_requests, \
             p2c_ewma or hash",
        ),
        (
            "a hash key without hashing",
            pool("hash_key = \"client_ip\"\n"),
            "3:12: pool[0].hash_key: hash_key is only used with algorithm = \"hash\"",
        ),
        (
            "a bad hash key",
            pool("algorithm = \"hash\"\nhash_key = \"cookie:a b\"\n"),
            "4:12: pool[0].hash_key: use client_ip, header:NAME or cookie:NAME",
        ),
        (
            "a bad cookie name",
            pool("sticky_cookie = \"a;b\"\n"),
            "3:17: pool[0].sticky_cookie: `a;b` is not a valid cookie name",
        ),
        (
            "an unknown protocol",
            pool("protocol = \"h3\"\n"),
            "3:12: pool[0].protocol: unknown protocol `h3`: use http1, h2 (with [pool.tls]) or h2c",
        ),
        (
            "h2 without TLS",
            pool("protocol = \"h2\"\n"),
            "3:12: pool[0].protocol: h2 is HTTP/2 over TLS: add [pool.tls], or use protocol = \"h2c\" for cleartext",
        ),
        (
            "h2c with TLS",
            pool("protocol = \"h2c\"\n[pool.tls]\nca = \"internal\"\n"),
            "3:12: pool[0].protocol: h2c is HTTP/2 in cleartext: with [pool.tls] use protocol = \"h2\"",
        ),
        (
            "a pin that is not a SHA-256",
            pool("[pool.tls]\npin_sha256 = [\"abc\"]\n"),
            "4:14: pool[0].tls.pin_sha256: `abc` is not a SHA-256 in hex (64 hex digits)",
        ),
        (
            "a client certificate without its key",
            pool("[pool.tls]\nclient_cert = \"client.pem\"\n"),
            "4:15: pool[0].tls.client_cert: a client certificate file needs `client_key` (or use `client_cert = \"internal\"`)",
        ),
        (
            "a CA file that is not there",
            pool("[pool.tls]\nca = \"nowhere.pem\"\n"),
            "4:6: pool[0].tls.ca: cannot read CA file /etc/rampart/nowhere.pem: No such file or directory (os error 2)",
        ),
        (
            "tls_name without TLS",
            "[[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"192.0.2.1:80\"\ntls_name = \"x\"\n".into(),
            "5:12: pool[0].server[0].tls_name: `tls_name` needs the pool's [pool.tls]",
        ),
        (
            "too many retries",
            pool("retries = 11\n"),
            "3:11: pool[0].retries: at most 10 retries",
        ),
        (
            "a budget share above 1",
            pool("retry_budget_ratio = 1.5\n"),
            "3:22: pool[0].retry_budget_ratio: a share between 0.0 and 1.0",
        ),
        (
            "a per-try timeout of zero",
            pool("per_try_timeout = \"0s\"\n"),
            "3:19: pool[0].per_try_timeout: must be more than 0",
        ),
        (
            "a bad slow start",
            pool("slow_start = \"fast\"\n"),
            "3:14: pool[0].slow_start: `fast` is not a duration: write it like \"5s\" or \"250ms\"",
        ),
    ]);
}

#[test]
fn server_mistakes() {
    let one = |s: &str| format!("[[pool]]\nname = \"p\"\n[[pool.server]]\n{s}");
    refuses(vec![
        (
            "neither address nor origin",
            one("weight = 2\n"),
            "3:1: pool[0].server[0]: a server needs `address = \"IP:PORT\"` or `origin = \"NAME\"`",
        ),
        (
            "both address and origin",
            one("address = \"192.0.2.1:80\"\norigin = \"o\"\n"),
            "4:11: pool[0].server[0].address: set either `address` or `origin`, not both",
        ),
        (
            "an unknown origin",
            one("origin = \"o\"\n"),
            "4:10: pool[0].server[0].origin: no [[origin]] is named `o`",
        ),
        (
            "a bad address",
            one("address = \"192.0.2.1\"\n"),
            "4:11: pool[0].server[0].address: `192.0.2.1` is not an address: write it as IP:PORT or HOST:PORT \
             (invalid socket address)",
        ),
        (
            "weight 0",
            one("address = \"192.0.2.1:80\"\nweight = 0\n"),
            "5:10: pool[0].server[0].weight: weight must be at least 1 (to stop traffic to a server, \
             remove or drain it)",
        ),
        (
            "weight above 10000",
            one("address = \"192.0.2.1:80\"\nweight = 10001\n"),
            "5:10: pool[0].server[0].weight: weight must be at most 10000",
        ),
        (
            "the same server twice",
            one("address = \"192.0.2.1:80\"\n[[pool.server]]\naddress = \"192.0.2.1:80\"\n"),
            "6:11: pool[0].server[1].name: server name `192.0.2.1:80` is used twice in pool `p`",
        ),
        (
            "a name twice",
            one("name = \"a\"\naddress = \"192.0.2.1:80\"\n[[pool.server]]\nname = \"a\"\naddress = \"192.0.2.2:80\"\n"),
            "8:11: pool[0].server[1].name: server name `a` is used twice in pool `p`",
        ),
    ]);
}
