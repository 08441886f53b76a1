//! `[[origin]]`: the built-in web servers.

use super::{loads, refuses};
use crate::config::model::{Origin, OriginContent};

fn origin(more: &str) -> String {
    format!("[[origin]]\nname = \"o\"\naddress = \"127.0.0.1:9000\"\n{more}")
}

#[test]
fn origins() {
    let o = |content| {
        vec![Origin {
            name: "o".into(),
            addr: "127.0.0.1:9000".parse().expect("an address"),
            content,
            tls: None,
        }]
    };
    loads(
        |m| m.origins.clone(),
        vec![
            ("the demo site", origin("demo = true\n"), o(OriginContent::Demo)),
            (
                "an absolute folder",
                origin("root = \"/srv/www\"\n"),
                o(OriginContent::Dir("/srv/www".into())),
            ),
            (
                "a folder relative to the config",
                origin("root = \"./www/\"\n"),
                o(OriginContent::Dir("/etc/rampart/www".into())),
            ),
            ("none", "".into(), Vec::new()),
        ],
    );
}

#[test]
fn origin_mistakes() {
    refuses(vec![
        (
            "a folder that is not there",
            origin("root = \"gone\"\n"),
            "4:8: origin[0].root: `/etc/rampart/gone` is not a directory",
        ),
        (
            "both a folder and the demo",
            origin("root = \"/srv/www\"\ndemo = true\n"),
            "4:8: origin[0].root: set either `root` or `demo = true`, not both",
        ),
        (
            "neither",
            origin(""),
            "2:8: origin[0]: an origin needs `root = \"DIR\"` or `demo = true`",
        ),
        (
            "an internal certificate with a key",
            origin("demo = true\n[origin.tls]\ncert = \"internal\"\nkey = \"k.pem\"\n"),
            "7:7: origin[0].tls.key: `cert = \"internal\"` takes no `key` (rampart's CA issues both)",
        ),
        (
            "a certificate file without its key",
            origin("demo = true\n[origin.tls]\ncert = \"c.pem\"\n"),
            "6:8: origin[0].tls.cert: a certificate file needs `key` (or use `cert = \"internal\"`)",
        ),
        (
            "client certificates against the system store",
            origin("demo = true\n[origin.tls]\ncert = \"internal\"\nclient_ca = \"system\"\n"),
            "7:13: origin[0].tls.client_ca: client certificates are checked against `internal` or a CA file, not the system store",
        ),
        (
            "the address of a listener",
            format!(
                "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:9000\"\n{}",
                origin("demo = true\n")
            ),
            "6:11: origin[0].address: address 127.0.0.1:9000 is already used by listener `web`: \
             give each listener its own address",
        ),
        (
            "a bad address",
            "[[origin]]\nname = \"o\"\naddress = \"9000\"\ndemo = true\n".into(),
            "3:11: origin[0].address: `9000` is not an address: write it as IP:PORT or HOST:PORT \
             (invalid socket address)",
        ),
    ]);
}
