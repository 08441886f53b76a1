//! `[[rule]]`: names, conditions, actions and their settings, listeners.

use std::num::NonZeroU32;
use std::time::Duration;

use http::{HeaderName, StatusCode};

use super::{loads, refuses};
use crate::config::model::{Action, Condition, KeyPart, Model};

/// A rule `r` with `more` keys, on a config with a listener `web`.
fn rule(more: &str) -> String {
    format!("[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:8080\"\n[[rule]]\nname = \"r\"\n{more}")
}

fn conditions(m: &Model) -> Vec<String> {
    m.rules[0].conditions.iter().map(|c| format!("{c:?}")).collect()
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("not zero")
}

#[test]
fn rule_conditions() {
    loads(
        conditions,
        vec![
            ("none: every request", rule("action = \"log\"\n"), Vec::new()),
            (
                "methods upper-cased, host lower-cased",
                rule("action = \"deny\"\n[rule.match]\nmethods = [\"post\", \"PUT\"]\nhost = \"*.Example.com\"\n"),
                vec!["Methods([POST, PUT])".into(), "Host(\".example.com\")".into()],
            ),
            (
                "a path prefix is normalised",
                rule("action = \"deny\"\n[rule.match]\npath_prefix = \"//%61dmin/./x/../\"\n"),
                vec!["PathPrefix(\"/admin/\")".into()],
            ),
            (
                "a prefix ignoring case",
                rule("action = \"deny\"\n[rule.match]\npath_prefix = \"/Admin\"\npath_case_insensitive = true\n"),
                vec!["PathPrefixNoCase(\"/Admin\")".into()],
            ),
            (
                "case-sensitive when said so",
                rule("action = \"deny\"\n[rule.match]\npath_prefix = \"/admin\"\npath_case_insensitive = false\n"),
                vec!["PathPrefix(\"/admin\")".into()],
            ),
            (
                "regex, header, query, client, SNI",
                rule(
                    "action = \"deny\"\n[rule.match]\npath_regex = \"^/x\"\nheader = { name = \"X-Debug\", regex = \"^1\" }\n\
                     query = { name = \"debug\", equals = \"1\" }\nclient = [\"10.0.0.0/8\", \"192.0.2.1\"]\nsni = \"A.Example.com\"\n",
                ),
                vec![
                    "PathRegex(Regex(\"^/x\"))".into(),
                    "Header { name: \"x-debug\", test: Regex(Regex(\"^1\")) }".into(),
                    "Query { name: \"debug\", equals: Some(\"1\") }".into(),
                    "Client([10.0.0.0/8, 192.0.2.1/32])".into(),
                    "Sni(\"a.example.com\")".into(),
                ],
            ),
            (
                "a header present, a header equal",
                format!(
                    "{}[[rule]]\nname = \"s\"\naction = \"deny\"\n[rule.match]\nheader = {{ name = \"x-b\", equals = \"1\" }}\n",
                    rule("action = \"deny\"\n[rule.match]\nheader = { name = \"x-a\" }\n")
                ),
                vec!["Header { name: \"x-a\", test: Present }".into()],
            ),
        ],
    );
    let m = super::load(&rule(
        "action = \"deny\"\n[rule.match]\npath_regex = \"^/admin\"\npath_case_insensitive = true\n",
    ))
    .expect("valid");
    let Condition::PathRegex(r) = &m.rules[0].conditions[0] else {
        panic!("a regex")
    };
    assert!(
        r.is_match("/ADMIN"),
        "path_case_insensitive applies to path_regex"
    );
}

#[test]
fn rule_actions() {
    let deny = |status: u16, body: &str| Action::Deny {
        status: StatusCode::from_u16(status).expect("a status"),
        body: body.into(),
    };
    loads(
        |m| m.rules.iter().map(|r| (r.listeners.clone(), r.action.clone())).collect::<Vec<_>>(),
        vec![
            ("allow, every listener", rule("action = \"allow\"\n"), vec![(None, Action::Allow)]),
            ("log", rule("action = \"log\"\nlisteners = [\"web\"]\n"), vec![(Some(vec!["web".into()]), Action::Log)]),
            ("deny: 403 and its reason", rule("action = \"deny\"\n"), vec![(None, deny(403, "403 Forbidden\n"))]),
            (
                "deny with a status and body",
                rule("action = \"deny\"\nstatus = 503\nbody = \"later\"\n"),
                vec![(None, deny(503, "later"))],
            ),
            ("a 4xx without a reason", rule("action = \"deny\"\nstatus = 499\n"), vec![(None, deny(499, "499 \n"))]),
            (
                "tarpit: two seconds, then 403",
                rule("action = \"tarpit\"\n"),
                vec![(
                    None,
                    Action::Tarpit {
                        delay: Duration::from_secs(2),
                        status: StatusCode::FORBIDDEN,
                        body: "403 Forbidden\n".into(),
                    },
                )],
            ),
            (
                "tarpit for longer",
                rule("action = \"tarpit\"\ndelay = \"30s\"\nstatus = 429\n"),
                vec![(
                    None,
                    Action::Tarpit {
                        delay: Duration::from_secs(30),
                        status: StatusCode::TOO_MANY_REQUESTS,
                        body: "429 Too Many Requests\n".into(),
                    },
                )],
            ),
            (
                "rate limit: burst = rate, by address",
                rule("action = \"rate_limit\"\nrate = 5\n"),
                vec![(
                    None,
                    Action::RateLimit {
                        per_second: nz(5),
                        burst: nz(5),
                        key: vec![KeyPart::Ip],
                        cluster: false,
                    },
                )],
            ),
            (
                "rate limit by every key",
                rule("action = \"rate_limit\"\nrate = 1\nburst = 20\nkey = [\"ip\", \"header:X-Api-Key\", \"route\", \"global\"]\n"),
                vec![(
                    None,
                    Action::RateLimit {
                        per_second: nz(1),
                        burst: nz(20),
                        key: vec![
                            KeyPart::Ip,
                            KeyPart::Header(HeaderName::from_static("x-api-key")),
                            KeyPart::Route,
                            KeyPart::Global,
                        ],
                        cluster: false,
                    },
                )],
            ),
        ],
    );
}

#[test]
fn rule_mistakes() {
    refuses(vec![
        (
            "a cluster scope without [cluster]",
            rule("action = \"rate_limit\"\nrate = 5\nscope = \"cluster\"\n"),
            "8:9: rule[0].scope: `scope = \"cluster\"` needs `[cluster] redis = \"redis://HOST:PORT\"`",
        ),
        (
            "an unknown scope",
            rule("action = \"rate_limit\"\nrate = 5\nscope = \"fleet\"\n"),
            "8:9: rule[0].scope: unknown scope `fleet`: use local or cluster",
        ),
        (
            "a scope on a deny rule",
            rule("action = \"deny\"\nscope = \"cluster\"\n"),
            "7:9: rule[0].scope: only rate_limit rules take `scope`",
        ),
        (
            "a cluster URL that is not redis://",
            format!(
                "[cluster]\nredis = \"http://127.0.0.1:6379\"\n{}",
                rule("action = \"allow\"\n")
            ),
            "2:9: cluster.redis: a redis:// URL, e.g. \"redis://127.0.0.1:6379/0\"",
        ),
        (
            "a peer address that is not IP:PORT",
            "[cluster]\npeers = [{ address = \"lb2\" }]\n".into(),
            "2:22: cluster.peers[0].address: an admin address like \"10.0.0.3:9900\"",
        ),
        (
            "a peer with both tokens",
            "[cluster]\npeers = [{ address = \"10.0.0.3:9900\", token = \"a\", token_file = \"t\" }]\n".into(),
            "2:65: cluster.peers[0].token_file: set either `token` or `token_file`, not both",
        ),
        (
            "two peers with one name",
            "[cluster]\npeers = [{ name = \"lb\", address = \"10.0.0.3:9900\" }, { name = \"lb\", address = \"10.0.0.4:9900\" }]\n".into(),
            "2:63: cluster.peers[1].name: peer name `lb` is used twice",
        ),
        (
            "a cluster URL without a port",
            "[cluster]\nredis = \"redis://cache\"\n".into(),
            "2:9: cluster.redis: name the host and port: \"redis://HOST:PORT\"",
        ),
        (
            "a cluster URL whose database is not a number",
            "[cluster]\nredis = \"redis://10.0.0.9:6379/x\"\n".into(),
            "2:9: cluster.redis: not a Redis URL rampart can use: Invalid database number - InvalidClientConfig",
        ),
        (
            "a cluster URL to a wildcard address",
            "[cluster]\nredis = \"redis://0.0.0.0:6379\"\n".into(),
            "2:9: cluster.redis: not a Redis URL rampart can use: Cannot connect to a wildcard address (0.0.0.0 or ::) - InvalidClientConfig",
        ),
        (
            "a name twice",
            format!(
                "{}[[rule]]\nname = \"r\"\naction = \"log\"\n",
                rule("action = \"log\"\n")
            ),
            "8:8: rule[1].name: rule names must be unique",
        ),
        (
            "an unknown action",
            rule("action = \"block\"\n"),
            "6:10: rule[0].action: unknown action `block`: use allow, deny, tarpit, rate_limit or log",
        ),
        ("no action", rule(""), "4:1: rule[0]: missing field `action`"),
        (
            "a status that is no error",
            rule("action = \"deny\"\nstatus = 302\n"),
            "7:10: rule[0].status: a 4xx or 5xx status",
        ),
        (
            "a status that is none",
            rule("action = \"deny\"\nstatus = 1000\n"),
            "7:10: rule[0].status: a 4xx or 5xx status",
        ),
        (
            "a bad delay",
            rule("action = \"tarpit\"\ndelay = \"long\"\n"),
            "7:9: rule[0].delay: `long` is not a duration: write it like \"5s\" or \"250ms\"",
        ),
        (
            "a rate limit without a rate",
            rule("action = \"rate_limit\"\n"),
            "6:10: rule[0].rate: rate_limit needs `rate` of at least 1",
        ),
        (
            "a rate of zero",
            rule("action = \"rate_limit\"\nrate = 0\n"),
            "7:8: rule[0].rate: rate_limit needs `rate` of at least 1",
        ),
        (
            "a burst of zero",
            rule("action = \"rate_limit\"\nrate = 1\nburst = 0\n"),
            "8:9: rule[0].burst: rate_limit needs `burst` of at least 1",
        ),
        (
            "an unknown key",
            rule("action = \"rate_limit\"\nrate = 1\nkey = [\"ip\", \"cookie:x\"]\n"),
            "8:7: rule[0].key: `cookie:x`: use ip, header:NAME, route or global",
        ),
        (
            "a bad header key",
            rule("action = \"rate_limit\"\nrate = 1\nkey = [\"header:a b\"]\n"),
            "8:7: rule[0].key: `header:a b`: use ip, header:NAME, route or global",
        ),
        (
            "an unknown listener",
            rule("action = \"log\"\nlisteners = [\"tls\"]\n"),
            "7:13: rule[0].listeners: no listener is named `tls`",
        ),
    ]);
}

#[test]
fn rule_match_mistakes() {
    let m = |more: &str| rule(&format!("action = \"deny\"\n[rule.match]\n{more}"));
    refuses(vec![
        ("a bad method", m("methods = [\"GET\", \"G T\"]\n"), "8:11: rule[0].match.methods: `G T` is not a method"),
        (
            "case without a path",
            m("path_case_insensitive = true\n"),
            "5:8: rule[0].match.path_case_insensitive: applies to `path_prefix` or `path_regex`, and this rule has neither",
        ),
        (
            "a prefix without a slash",
            m("path_prefix = \"admin\"\n"),
            "8:15: rule[0].match.path_prefix: a path prefix starts with `/`",
        ),
        (
            "a prefix with an encoded slash",
            m("path_prefix = \"/a%2fb\"\n"),
            "8:15: rule[0].match.path_prefix: the path contains an encoded slash",
        ),
        (
            "a prefix with a bad escape",
            m("path_prefix = \"/a%zz\"\n"),
            "8:15: rule[0].match.path_prefix: the path contains a malformed percent escape",
        ),
        (
            "a bad path regex",
            m("path_regex = \"(\"\n"),
            "8:14: rule[0].match.path_regex: invalid regex: regex parse error:\n    (\n    ^\nerror: unclosed group",
        ),
        (
            "a bad header name",
            m("header = { name = \"a b\" }\n"),
            "8:19: rule[0].match.header.name: not a header name",
        ),
        (
            "equals and regex",
            m("header = { name = \"x\", equals = \"1\", regex = \"1\" }\n"),
            "8:46: rule[0].match.header: set `equals` or `regex`, not both",
        ),
        (
            "a bad header regex",
            m("header = { name = \"x\", regex = \"[\" }\n"),
            "8:32: rule[0].match.header.regex: invalid regex: regex parse error:\n    [\n    ^\nerror: unclosed character class",
        ),
        (
            "a bad client",
            m("client = [\"10.0.0.0/8\", \"everyone\"]\n"),
            "8:10: rule[0].match.client: `everyone` is not a CIDR block or an IP address",
        ),
        (
            "an unknown condition",
            m("url = \"/x\"\n"),
            "8:1: rule[0].match: unknown field `url`, expected one of `methods`, `host`, `path_prefix`, \
             `path_regex`, `path_case_insensitive`, `header`, `query`, `client`, `sni`",
        ),
    ]);
}

#[test]
fn cluster_settings_keep_the_password_out_of_what_is_shown() {
    loads(
        |m| m.cluster.clone(),
        vec![
            ("none", rule("action = \"allow\"\n"), None),
            (
                "with a password",
                "[cluster]\nredis = \"redis://:s3cret@10.0.0.9:6379/2\"\ntimeout = \"50ms\"\n".into(),
                Some(crate::config::model::ClusterSettings {
                    redis: "redis://:s3cret@10.0.0.9:6379/2".into(),
                    redis_shown: "redis://***@10.0.0.9:6379/2".into(),
                    host: "10.0.0.9".into(),
                    port: 6379,
                    timeout: std::time::Duration::from_millis(50),
                }),
            ),
        ],
    );
}
