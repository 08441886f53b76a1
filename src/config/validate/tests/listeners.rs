//! `[[listener]]`: addresses, protocols, certificates, HSTS, redirects and
//! client lists.

use http::HeaderValue;

use super::{loads, refuses, NOT_AFTER, POOL};
use crate::config::model::{ClientFilter, HttpsSettings, Listener, ListenerKind};

/// A listener named `web` on `127.0.0.1:8080` with `more` keys, and a
/// pool and route so that it is a complete config.
fn web(more: &str) -> String {
    format!(
        "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:8080\"\n{more}{POOL}[[route]]\npool = \"p\"\n"
    )
}

/// An https listener `tls` with `more` keys after its address.
fn tls(more: &str) -> String {
    format!(
        "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:8443\"\nprotocol = \"https\"\n\
         {more}{POOL}[[route]]\npool = \"p\"\n"
    )
}

const CERT: &str = "[[listener.certificate]]\ncert = \"site.pem\"\nkey = \"site.key\"\n";

fn plain(name: &str, addr: &str) -> Listener {
    Listener {
        name: name.into(),
        addr: addr.parse().expect("an address"),
        kind: ListenerKind::Http { redirect_to: None },
        clients: ClientFilter::default(),
        proxy_protocol: false,
        tcp_pool: None,
        db_endpoint: None,
        send_proxy: None,
    }
}

fn nets(v: &[&str]) -> Vec<ipnet::IpNet> {
    v.iter().map(|s| s.parse().expect("a net")).collect()
}

#[test]
fn plain_listeners() {
    loads(
        |m| m.listeners.clone(),
        vec![
            (
                "defaults: http, everyone",
                web(""),
                vec![plain("web", "127.0.0.1:8080")],
            ),
            (
                "a name is resolved once",
                "[[listener]]\nname = \"a\"\naddress = \"backend.test:80\"\n".into(),
                vec![plain("a", "192.0.2.10:80")],
            ),
            (
                "port 0 twice: each picks a free port",
                "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:0\"\n\
                 [[listener]]\nname = \"b\"\naddress = \"127.0.0.1:0\"\n"
                    .into(),
                vec![plain("a", "127.0.0.1:0"), plain("b", "127.0.0.1:0")],
            ),
            (
                "PROXY protocol and client lists (entries trimmed, files added)",
                web(
                    "proxy_protocol = true\nallow = [\" 10.1.0.0/16 \", \"2001:db8::1\"]\n\
                     allow_file = \"allow.txt\"\ndeny = [\"10.1.2.0/24\"]\n",
                ),
                vec![Listener {
                    clients: ClientFilter {
                        allow: nets(&["10.1.0.0/16", "2001:db8::1/128", "10.0.0.0/8", "192.0.2.1/32"]),
                        deny: nets(&["10.1.2.0/24"]),
                    },
                    proxy_protocol: true,
                    ..plain("web", "127.0.0.1:8080")
                }],
            ),
        ],
    );
}

#[test]
fn https_listeners() {
    let https = |certs: usize, hsts: Option<&'static str>, http2: bool| {
        move |m: &crate::config::Model| match &m.listeners[0].kind {
            ListenerKind::Https(HttpsSettings {
                certs: c,
                hsts: h,
                http2: h2,
                ..
            }) => {
                c.len() == certs
                    && h.map(|x| x.header()) == hsts.map(HeaderValue::from_static)
                    && *h2 == http2
            }
            ListenerKind::Http { .. } => false,
        }
    };
    loads(
        https(0, None, true),
        vec![("no certificate: the local one", tls(""), true)],
    );
    loads(
        https(1, Some("max-age=31536000"), false),
        vec![(
            "HSTS for a year, no HTTP/2",
            tls(&format!("hsts_max_age = \"365d\"\nhttp2 = false\n{CERT}")),
            true,
        )],
    );
    loads(
        https(2, Some("max-age=60; includeSubDomains"), true),
        vec![(
            "two certificates, HSTS with subdomains",
            tls(&format!(
                "hsts_max_age = \"1m\"\nhsts_include_subdomains = true\n{CERT}{CERT}"
            )),
            true,
        )],
    );
    let cert = |m: &crate::config::Model| match &m.listeners[0].kind {
        ListenerKind::Https(s) => s
            .certs
            .iter()
            .map(|c| {
                (
                    c.cert_path.clone(),
                    c.sni_names.clone(),
                    c.cert_names.len(),
                    c.not_after,
                )
            })
            .collect(),
        ListenerKind::Http { .. } => Vec::new(),
    };
    loads(
        cert,
        vec![
            (
                "SNI names are the certificate's, lower-cased",
                tls(CERT),
                vec![(
                    "/etc/rampart/site.pem".into(),
                    vec!["example.com".to_string(), "*.example.com".into()],
                    2,
                    NOT_AFTER,
                )],
            ),
            (
                "configured names win",
                tls(&format!("{CERT}names = [\"WWW.example.com\"]\n")),
                vec![(
                    "/etc/rampart/site.pem".into(),
                    vec!["www.example.com".to_string()],
                    2,
                    NOT_AFTER,
                )],
            ),
        ],
    );
    loads(
        |m| m.listeners[1].kind.clone(),
        vec![(
            "a redirect to an https listener",
            format!(
                "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:8443\"\nprotocol = \"https\"\n\
                 [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:8080\"\nredirect_to = \"tls\"\n{POOL}\
                 [[route]]\npool = \"p\"\n"
            ),
            ListenerKind::Http {
                redirect_to: Some("tls".into()),
            },
        )],
    );
}

#[test]
fn listener_mistakes() {
    let two = |a: &str, b: &str| {
        format!(
            "[[listener]]\nname = \"{a}\"\naddress = \"127.0.0.1:8080\"\n\
             [[listener]]\nname = \"{b}\"\naddress = \"127.0.0.1:8080\"\n"
        )
    };
    let https = |more: &str| {
        format!("[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:8443\"\nprotocol = \"https\"\n{more}")
    };
    let tcp = |more: &str| {
        format!("[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:3306\"\nmode = \"tcp\"\npool = \"p\"\n{more}{POOL}")
    };
    refuses(vec![
        ("a name twice", two("a", "a"), "5:8: listener[1].name: listener name `a` is used twice"),
        (
            "client certificates on plain HTTP",
            "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:8080\"\nclient_auth = \"required\"\n".into(),
            "4:15: listener[0]: client certificates need `protocol = \"https\"`",
        ),
        (
            "a tcp listener without a pool",
            "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:8080\"\nmode = \"tcp\"\n".into(),
            "4:8: listener[0].mode: a tcp listener needs `pool = \"NAME\"`",
        ),
        (
            "an unknown mode",
            "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:8080\"\nmode = \"udp\"\n".into(),
            "4:8: listener[0].mode: unknown mode `udp`: use http or tcp",
        ),
        (
            "a role on an HTTP listener",
            "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:8080\"\nrole = \"writer\"\n".into(),
            "4:8: listener[0].role: only `mode = \"tcp\"` listeners take this key",
        ),
        (
            "an unknown role",
            tcp("role = \"primary\"\n"),
            "6:8: listener[0].role: unknown role `primary`: use writer or reader",
        ),
        (
            "max_lag on a writer",
            tcp("role = \"writer\"\nmax_lag = \"5s\"\n"),
            "7:11: listener[0].max_lag: only `role = \"reader\"` listeners take `max_lag`",
        ),
        (
            "a reader over a pool without a mysql check",
            tcp("role = \"reader\"\n"),
            "6:8: listener[0].role: pool `p` needs `[pool.health_check] type = \"mysql\"` to tell its primary from its replicas",
        ),
        (
            "a tcp listener over a p2c pool",
            "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:3306\"\nmode = \"tcp\"\npool = \"p\"\n\
             [[pool]]\nname = \"p\"\nalgorithm = \"p2c_ewma\"\n[[pool.server]]\naddress = \"192.0.2.1:3306\"\n"
                .into(),
            "5:8: listener[0].pool: pool `p` cannot take TCP connections: its algorithm p2c_ewma weighs request \
             latency: use round_robin, weighted, least_requests or hash",
        ),
        (
            "a tcp listener over a pool hashing a header",
            "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:3306\"\nmode = \"tcp\"\npool = \"p\"\n\
             [[pool]]\nname = \"p\"\nalgorithm = \"hash\"\nhash_key = \"header:X-User\"\n\
             [[pool.server]]\naddress = \"192.0.2.1:3306\"\n"
                .into(),
            "5:8: listener[0].pool: pool `p` cannot take TCP connections: its hash_key reads a header or cookie, \
             which a TCP connection has none of: hash on client_ip",
        ),
        (
            "an unknown PROXY version",
            tcp("send_proxy = \"v3\"\n"),
            "6:14: listener[0].send_proxy: unknown PROXY protocol version `v3`: use v1 or v2",
        ),
        (
            "http2 on a tcp listener",
            tcp("protocol = \"https\"\nhttp2 = true\n"),
            "4:8: listener[0].http2: a tcp listener offers no HTTP protocol: remove `http2`",
        ),
        (
            "HTTP/3 on plain HTTP",
            web("http3 = true\n"),
            "4:9: listener[0].http3: HTTP/3 needs `protocol = \"https\"`",
        ),
        (
            "HTTP/3 on a tcp listener",
            tcp("protocol = \"https\"\nhttp3 = true\n"),
            "7:9: listener[0].http3: a tcp listener offers no HTTP protocol: remove `http3`",
        ),
        (
            "HTTP/3 behind a PROXY-protocol load balancer",
            https("proxy_protocol = true\nhttp3 = true\n"),
            "6:9: listener[0].http3: QUIC carries no PROXY protocol header: HTTP/3 cannot serve a listener \
             behind a proxy_protocol load balancer",
        ),
        (
            "ACME on plain HTTP",
            "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:8080\"\n[listener.acme]\ndirectory = \"https://x/dir\"\nnames = [\"a.test\"]\n".into(),
            "4:1: listener[0].acme: ACME certificates need `protocol = \"https\"`",
        ),
        (
            "an ACME directory that is not https",
            https("[listener.acme]\ndirectory = \"http://x/dir\"\nnames = [\"a.test\"]\n"),
            "6:13: listener[0].acme.directory: the ACME directory must be an https:// URL",
        ),
        (
            "an unknown ACME challenge",
            https("[listener.acme]\ndirectory = \"https://x/dir\"\nnames = [\"a.test\"]\nchallenge = \"dns-01\"\n"),
            "8:13: listener[0].acme.challenge: unknown challenge `dns-01`: use tls-alpn-01 or http-01",
        ),
        (
            "client_auth without client_ca",
            https("client_auth = \"required\"\n"),
            "5:15: listener[0].client_auth: `client_auth` needs `client_ca`",
        ),
        (
            "an unknown client_auth",
            https("client_auth = \"maybe\"\nclient_ca = \"internal\"\n"),
            "5:15: listener[0].client_auth: unknown client_auth `maybe`: use required or optional",
        ),
        (
            "an address twice",
            two("a", "b"),
            "6:11: listener[1].address: address 127.0.0.1:8080 is already used by listener `a`: \
             give each listener its own address",
        ),
        (
            "an address without a port",
            "[[listener]]\nname = \"a\"\naddress = \"localhost\"\n".into(),
            "3:11: listener[0].address: `localhost` is not an address: write it as IP:PORT or HOST:PORT \
             (invalid socket address)",
        ),
        (
            "a name that does not resolve",
            "[[listener]]\nname = \"a\"\naddress = \"nowhere.test:80\"\n".into(),
            "3:11: listener[0].address: `nowhere.test:80` is not an address: write it as IP:PORT or HOST:PORT \
             (failed to lookup address information: Name or service not known)",
        ),
        (
            "a name with no address",
            "[[listener]]\nname = \"a\"\naddress = \"empty.test:80\"\n".into(),
            "3:11: listener[0].address: `empty.test:80` resolves to no address",
        ),
        (
            "no address",
            "[[listener]]\nname = \"a\"\n".into(),
            "1:1: listener[0]: missing field `address`",
        ),
        (
            "an unknown protocol",
            web("protocol = \"h3\"\n"),
            "4:12: listener[0].protocol: unknown protocol `h3`: use http or https",
        ),
        (
            "a certificate on plain http",
            web(CERT),
            "5:8: listener[0].certificate: certificates need `protocol = \"https\"`",
        ),
        (
            "HSTS on plain http",
            web("hsts_max_age = \"1d\"\n"),
            "4:16: listener[0].hsts_max_age: HSTS is only sent on https listeners",
        ),
        (
            "a bad HSTS age",
            tls("hsts_max_age = \"a year\"\n"),
            "5:16: listener[0].hsts_max_age: `a year` is not a duration: write it like \"5s\" or \"250ms\"",
        ),
        (
            "a redirect from https",
            tls("redirect_to = \"x\"\n"),
            "5:15: listener[0].redirect_to: redirect_to is for plain http listeners",
        ),
        (
            "a redirect to no listener",
            web("redirect_to = \"tls\"\n"),
            "4:15: listener[0].redirect_to: no https listener is named `tls`",
        ),
        (
            "a redirect to a plain listener",
            format!("{}redirect_to = \"a\"\n", two("a", "b").replace("8080\"\n[[", "8081\"\n[[")),
            "7:15: listener[1].redirect_to: no https listener is named `a`",
        ),
        (
            "a missing certificate file",
            tls("[[listener.certificate]]\ncert = \"gone.pem\"\nkey = \"site.key\"\n"),
            "6:8: listener[0].certificate[0].cert: cannot read certificate file /etc/rampart/gone.pem: \
             No such file or directory (os error 2)",
        ),
        (
            "a missing key file",
            tls("[[listener.certificate]]\ncert = \"site.pem\"\nkey = \"gone.key\"\n"),
            "7:7: listener[0].certificate[0].key: cannot use private key /etc/rampart/gone.key: \
             No such file or directory (os error 2)",
        ),
        (
            "not a certificate",
            tls("[[listener.certificate]]\ncert = \"bad.pem\"\nkey = \"bad.key\"\n"),
            "6:8: listener[0].certificate[0].cert: /etc/rampart/bad.pem holds no PEM certificate",
        ),
        (
            "a key of another certificate",
            tls("[[listener.certificate]]\ncert = \"other.pem\"\nkey = \"other.key\"\n"),
            "7:7: listener[0].certificate[0].key: cannot use private key /etc/rampart/other.key: no match",
        ),
        (
            "a certificate without a key",
            tls("[[listener.certificate]]\ncert = \"site.pem\"\n"),
            "5:1: listener[0].certificate[0]: missing field `key`",
        ),
        (
            "a bad allow entry",
            web("allow = [\"10.0.0.0/8\", \"10.0.0.300\"]\n"),
            "4:9: listener[0].allow: `10.0.0.300` is not a CIDR block or an IP address",
        ),
        (
            "a prefix too long",
            web("deny = [\"10.0.0.0/33\"]\n"),
            "4:8: listener[0].deny: `10.0.0.0/33` is not a CIDR block or an IP address",
        ),
        (
            "a bad line in a list file",
            web("deny_file = \"bad-allow.txt\"\n"),
            "4:13: listener[0].deny_file: /etc/rampart/bad-allow.txt:2: `nope` is not a CIDR block or an IP address",
        ),
        (
            "a missing list file",
            web("allow_file = \"gone.txt\"\n"),
            "4:14: listener[0].allow_file: cannot read /etc/rampart/gone.txt: No such file or directory (os error 2)",
        ),
    ]);
}
