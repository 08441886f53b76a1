//! `[[route]]`: pool, host, path, listeners, body limit, upgrades.

use super::{loads, refuses, POOL};
use crate::config::model::{HostMatch, Route};

fn route(more: &str) -> String {
    format!(
        "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:8080\"\n{POOL}[[route]]\npool = \"p\"\n{more}"
    )
}

fn defaults() -> Route {
    Route {
        listeners: None,
        host: HostMatch::Any,
        path_prefix: "/".into(),
        pool: 0,
        max_body: None,
        upgrades: vec!["websocket".into()],
        waf: None,
        waf_exclude: Default::default(),
    }
}

#[test]
fn routes() {
    loads(
        |m| m.routes.clone(),
        vec![
            ("defaults", route(""), vec![defaults()]),
            (
                "an exact host, lower-cased and trimmed",
                route("host = \" Example.COM \"\n"),
                vec![Route {
                    host: HostMatch::Exact("example.com".into()),
                    ..defaults()
                }],
            ),
            (
                "a wildcard host",
                route("host = \"*.Example.com\"\n"),
                vec![Route {
                    host: HostMatch::Suffix(".example.com".into()),
                    ..defaults()
                }],
            ),
            (
                "path, listeners, body limit, upgrades",
                route("path = \"/api\"\nlisteners = [\"web\"]\nmax_body = \"1MiB\"\nupgrades = [\"WebSocket\", \" my-proto.v2 \"]\n"),
                vec![Route {
                    listeners: Some(vec!["web".into()]),
                    path_prefix: "/api".into(),
                    max_body: Some(1 << 20),
                    upgrades: vec!["websocket".into(), "my-proto.v2".into()],
                    ..defaults()
                }],
            ),
            (
                "no upgrades",
                route("upgrades = []\n"),
                vec![Route {
                    upgrades: Vec::new(),
                    ..defaults()
                }],
            ),
            (
                "the second pool",
                format!(
                    "{POOL}[[pool]]\nname = \"q\"\n[[pool.server]]\naddress = \"192.0.2.2:80\"\n\
                     [[route]]\npool = \"q\"\n"
                ),
                vec![Route { pool: 1, ..defaults() }],
            ),
            (
                "a redirect-only listener needs no route",
                "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:8443\"\nprotocol = \"https\"\n\
                 [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:8080\"\nredirect_to = \"tls\"\n"
                    .into(),
                Vec::new(),
            ),
            ("pools but no listener need no route", POOL.into(), Vec::new()),
        ],
    );
}

#[test]
fn route_mistakes() {
    refuses(vec![
        (
            "an unknown pool",
            format!("[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:8080\"\n{POOL}[[route]]\npool = \"q\"\n"),
            "9:8: route[0].pool: no pool is named `q` (pools defined: p)",
        ),
        (
            "no pool at all",
            "[[route]]\npool = \"p\"\n".into(),
            "2:8: route[0].pool: no pool is named `p` (pools defined: none)",
        ),
        (
            "a route without a pool",
            "[[route]]\npath = \"/\"\n".into(),
            "1:1: route[0]: missing field `pool`",
        ),
        (
            "a wildcard with nothing after it",
            route("host = \"*.\"\n"),
            "10:8: route[0].host: write a wildcard host as `*.example.com`",
        ),
        (
            "two wildcards",
            route("host = \"*.*.example.com\"\n"),
            "10:8: route[0].host: write a wildcard host as `*.example.com`",
        ),
        (
            "a wildcard inside",
            route("host = \"www.*.com\"\n"),
            "10:8: route[0].host: a host is `example.com` or `*.example.com`",
        ),
        (
            "a URL for a host",
            route("host = \"example.com/x\"\n"),
            "10:8: route[0].host: a host is `example.com` or `*.example.com`",
        ),
        ("an empty host", route("host = \" \"\n"), "10:8: route[0].host: a host is `example.com` or `*.example.com`"),
        (
            "a path without a slash",
            route("path = \"api\"\n"),
            "10:8: route[0].path: a path prefix starts with `/`",
        ),
        (
            "an unknown listener",
            route("listeners = [\"web\", \"tls\"]\n"),
            "10:13: route[0].listeners: no listener is named `tls`",
        ),
        (
            "a bad body limit",
            route("max_body = \"big\"\n"),
            "10:12: route[0].max_body: `big` is not a size: write it like \"64KiB\" or \"1MiB\"",
        ),
        (
            "an h2c upgrade",
            route("upgrades = [\"websocket\", \"H2C\"]\n"),
            "10:12: route[0].upgrades: an `h2c` upgrade would turn the connection into an HTTP/2 tunnel past \
             every rule; use `protocol = \"h2c\"` on the pool to speak HTTP/2 to its servers",
        ),
        (
            "not a protocol name",
            route("upgrades = [\"web socket\"]\n"),
            "10:12: route[0].upgrades: `web socket` is not a protocol name such as `websocket`",
        ),
        (
            "an empty protocol name",
            route("upgrades = [\"\"]\n"),
            "10:12: route[0].upgrades: `` is not a protocol name such as `websocket`",
        ),
        (
            "listeners and pools but no route",
            format!("[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:8080\"\n{POOL}"),
            "1:1: route: no [[route]] sends traffic to a pool: add a [[route]] table with `pool = \"NAME\"`",
        ),
    ]);
}
