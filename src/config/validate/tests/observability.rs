//! `[log]`, `[admin]` and `[access_log]`.

use std::path::PathBuf;

use super::{loads, refuses};
use crate::config::model::{AccessLog, Admin, LogSettings};

#[test]
fn log_settings() {
    let log = |level: Option<&str>, json| LogSettings {
        level: level.map(str::to_string),
        json,
    };
    loads(
        |m| m.log.clone(),
        vec![
            (
                "defaults: the level of the command line, auto format",
                "".into(),
                log(None, None),
            ),
            (
                "a filter",
                "[log]\nlevel = \"rampart=debug,info\"\n".into(),
                log(Some("rampart=debug,info"), None),
            ),
            ("json", "[log]\nformat = \"json\"\n".into(), log(None, Some(true))),
            (
                "text",
                "[log]\nformat = \"text\"\n".into(),
                log(None, Some(false)),
            ),
            ("auto", "[log]\nformat = \"auto\"\n".into(), log(None, None)),
        ],
    );
    refuses(vec![(
        "an unknown format",
        "[log]\nformat = \"xml\"\n".into(),
        "2:10: log.format: unknown format `xml`: use text, json or auto",
    )]);
}

#[test]
fn admin() {
    let admin = |addr: Option<&str>, token: Option<&str>| Admin {
        addr: addr.map(|a| a.parse().expect("an address")),
        token: token.map(str::to_string),
    };
    loads(
        |m| m.admin.clone(),
        vec![
            (
                "defaults: loopback, no token",
                "".into(),
                admin(Some("127.0.0.1:9900"), None),
            ),
            ("disabled", "[admin]\nenabled = false\n".into(), admin(None, None)),
            (
                "disabled: any address, no token needed",
                "[admin]\nenabled = false\naddress = \"0.0.0.0:9900\"\n".into(),
                admin(None, None),
            ),
            (
                "a token of 16 characters, trimmed",
                "[admin]\ntoken = \" 0123456789abcdef \"\n".into(),
                admin(Some("127.0.0.1:9900"), Some("0123456789abcdef")),
            ),
            (
                "a token file: its first line, trimmed",
                "[admin]\ntoken_file = \"token\"\n".into(),
                admin(Some("127.0.0.1:9900"), Some("0123456789abcdef")),
            ),
            (
                "any address with a token",
                "[admin]\naddress = \"0.0.0.0:0\"\ntoken = \"0123456789abcdef\"\n".into(),
                admin(Some("0.0.0.0:0"), Some("0123456789abcdef")),
            ),
            (
                "IPv6 loopback without a token",
                "[admin]\naddress = \"[::1]:9900\"\n".into(),
                admin(Some("[::1]:9900"), None),
            ),
        ],
    );
}

#[test]
fn admin_mistakes() {
    refuses(vec![
        (
            "a short token",
            "[admin]\ntoken = \"0123456789abcde\"\n".into(),
            "2:9: admin.token: a token needs at least 16 characters",
        ),
        (
            "both a token and a file",
            "[admin]\ntoken = \"0123456789abcdef\"\ntoken_file = \"token\"\n".into(),
            "3:14: admin.token_file: set either `token` or `token_file`, not both",
        ),
        (
            "a short token in a file",
            "[admin]\ntoken_file = \"short-token\"\n".into(),
            "2:14: admin.token_file: the token needs at least 16 characters",
        ),
        (
            "a missing token file",
            "[admin]\ntoken_file = \"gone\"\n".into(),
            "2:14: admin.token_file: cannot read /etc/rampart/gone: No such file or directory (os error 2)",
        ),
        (
            "a public address without a token",
            "[admin]\naddress = \"0.0.0.0:9900\"\n".into(),
            "2:11: admin.address: 0.0.0.0:9900 is not a loopback address: set admin.token (or token_file) \
             to expose the admin API",
        ),
        (
            "a bad address",
            "[admin]\naddress = \"9900\"\n".into(),
            "2:11: admin.address: `9900` is not an address: write it as IP:PORT or HOST:PORT (invalid socket address)",
        ),
    ]);
}

#[test]
fn access_log() {
    let on = |json, path: Option<&str>, buffer| {
        Some(AccessLog {
            json,
            path: path.map(PathBuf::from),
            buffer,
        })
    };
    loads(
        |m| m.access_log.clone(),
        vec![
            ("off by default", "".into(), None),
            ("off, whatever else is set", "[access_log]\nformat = \"combined\"\n".into(), None),
            ("on: json to stdout", "[access_log]\nenabled = true\n".into(), on(true, None, 8192)),
            (
                "combined, to a file next to the config, small buffer",
                "[access_log]\nenabled = true\nformat = \"combined\"\npath = \"logs/access.log\"\nbuffer = 1\n".into(),
                on(false, Some("/etc/rampart/logs/access.log"), 1),
            ),
            (
                "`-` is stdout, the largest buffer",
                "[access_log]\nenabled = true\npath = \"-\"\nbuffer = 1000000\n".into(),
                on(true, None, 1_000_000),
            ),
        ],
    );
    refuses(vec![
        (
            "an unknown format",
            "[access_log]\nenabled = true\nformat = \"clf\"\n".into(),
            "3:10: access_log.format: unknown format `clf`: use json or combined",
        ),
        (
            "an empty buffer, even when off",
            "[access_log]\nbuffer = 0\n".into(),
            "2:10: access_log.buffer: a number of lines from 1 to 1000000",
        ),
        (
            "a buffer too large",
            "[access_log]\nenabled = true\nbuffer = 1000001\n".into(),
            "3:10: access_log.buffer: a number of lines from 1 to 1000000",
        ),
    ]);
}
