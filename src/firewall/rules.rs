//! Request rules: ordered, first decisive match wins. Each rule has a set
//! of conditions (all must hold) and an action: `allow` (stop, let it
//! through), `deny` (answer with a status and body), `tarpit` (wait, then
//! deny), `rate_limit` or `log` (log and go on to the next rule).
//!
//! The rules themselves are the config's ([`Rule`]); [`RuleRt`] is one as
//! the proxy runs it, with its counter, answer body and rate limiter.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::fields::HeaderView;

use super::ratelimit::{Digest, Limiter, RateKey};
use crate::config::model::{Action, Condition, HeaderTest, KeyPart, Rule};

/// What rules may look at.
pub struct RequestView<'a> {
    pub method: &'a Method,
    /// Lower-case, without port.
    pub host: &'a str,
    /// Normalised.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a dyn HeaderView,
    pub client: IpAddr,
    pub sni: Option<&'a str>,
    /// The route's key (`host/path -> pool`), or `-` without a route.
    pub route: &'a str,
}

impl std::fmt::Debug for RequestView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestView")
            .field("method", self.method)
            .field("host", &self.host)
            .field("path", &self.path)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// A rule as the proxy runs it, with its counter and log limiter.
#[derive(Debug)]
pub struct RuleRt {
    pub rule: Rule,
    pub hits: Arc<AtomicU64>,
    /// The answer body of `deny` and `tarpit`, shared by every answer.
    body: Bytes,
    limiter: Option<Arc<Limiter>>,
    log_window: AtomicU64,
    log_count: AtomicU64,
}

/// What makes two rate-limit rules share their buckets: rate, burst, key.
type RateSpec = (std::num::NonZeroU32, std::num::NonZeroU32, Vec<KeyPart>);

/// One limiter per rate-limit rule (by name), kept in the bindings that
/// outlive reloads: shared by every listener the rule covers, and kept
/// across reloads and runtime changes while the rule's [`RateSpec`] holds.
#[derive(Debug, Default)]
pub struct RuleLimiters {
    by_rule: std::sync::Mutex<std::collections::HashMap<String, (RateSpec, Arc<Limiter>)>>,
}

impl RuleLimiters {
    /// The limiter of rule `name`: the one it already has when `spec` is
    /// unchanged (buckets keep their state), a new one otherwise.
    fn get(&self, name: &str, spec: RateSpec) -> Arc<Limiter> {
        let mut m = self
            .by_rule
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((had, l)) = m.get(name) {
            if *had == spec {
                return l.clone();
            }
        }
        let l = Arc::new(Limiter::new(spec.0, spec.1));
        m.insert(name.to_string(), (spec, l.clone()));
        l
    }

    /// Forgets the limiters of rules not in `names` (rules removed).
    pub fn keep_only<'a>(&self, names: impl Iterator<Item = &'a str>) {
        let names: std::collections::HashSet<&str> = names.collect();
        let mut m = self
            .by_rule
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.retain(|k, _| names.contains(k.as_str()));
    }
}

impl RuleRt {
    /// A rule as the proxy runs it; a rate limit takes its limiter from
    /// `limiters`.
    pub fn new(rule: Rule, hits: Arc<AtomicU64>, limiters: &RuleLimiters) -> Self {
        let limiter = match &rule.action {
            Action::RateLimit {
                per_second,
                burst,
                key,
                ..
            } => Some(limiters.get(&rule.name, (*per_second, *burst, key.clone()))),
            _ => None,
        };
        let body = match &rule.action {
            Action::Deny { body, .. } | Action::Tarpit { body, .. } => Bytes::from(body.clone()),
            _ => Bytes::new(),
        };
        RuleRt {
            rule,
            hits,
            body,
            limiter,
            log_window: AtomicU64::new(0),
            log_count: AtomicU64::new(0),
        }
    }

    /// At most 10 log lines per rule and second, so that logging cannot be flooded.
    fn may_log(&self) -> bool {
        let now = crate::units::clock_ms() / 1000;
        if self.log_window.swap(now, Relaxed) != now {
            self.log_count.store(0, Relaxed);
        }
        self.log_count.fetch_add(1, Relaxed) < 10
    }
}

/// The outcome for one request.
#[derive(Debug)]
pub enum Verdict<'a> {
    Pass,
    /// A rate limit with `scope = "cluster"` matched: the fleet's bucket
    /// (`key`, its whole Redis key) decides; the caller asks Redis for
    /// `rule`, the `at`-th, then goes on after it.
    Shared {
        at: usize,
        rule: &'a RuleRt,
        key: String,
    },
    Reject {
        rule: &'a RuleRt,
        status: StatusCode,
        body: Bytes,
        delay: Duration,
        retry_after: Option<u64>,
    },
}

impl RuleRt {
    /// A rate-limit rule's local bucket: the rejection when it is empty.
    pub fn check_local(&self, v: &RequestView<'_>) -> Option<Verdict<'_>> {
        let (Action::RateLimit { key, .. }, Some(l)) = (&self.rule.action, &self.limiter) else {
            return None;
        };
        l.check(&rate_key(key, v)).err().map(|wait| self.limited(wait, v))
    }

    /// The 429 a rate limit answers, counted and logged.
    pub fn limited(&self, wait: Duration, v: &RequestView<'_>) -> Verdict<'_> {
        self.hits.fetch_add(1, Relaxed);
        if self.may_log() {
            tracing::info!(rule = %self.rule.name, client = %v.client, path = v.path, "rate limited");
        }
        let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Verdict::Reject {
            rule: self,
            status: StatusCode::TOO_MANY_REQUESTS,
            body: Bytes::from_static(b"429 Too Many Requests\n"),
            delay: Duration::ZERO,
            retry_after: Some(retry_after.max(1)),
        }
    }
}

/// The Redis key of a cluster-scope rule's bucket, the same on every
/// instance: `rampart:rl:RULE:` and what the rule counts by (the client
/// address, a header's value as a [`crate::hash`] digest, the route).
fn fleet_key(rule: &str, parts: &[KeyPart], v: &RequestView<'_>) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(64);
    let _ = write!(out, "rampart:rl:{rule}:");
    for p in parts {
        let _ = match p {
            KeyPart::Ip => write!(out, "ip={};", v.client),
            KeyPart::Header(h) => {
                let value = v.headers.get(h.as_str()).unwrap_or_default();
                let digest = crate::hash::hash64(crate::hash::SEED_FLEET, value);
                write!(out, "h:{h}={digest:016x};")
            }
            KeyPart::Route => write!(out, "route={};", v.route),
            KeyPart::Global => write!(out, "all;"),
        };
    }
    out
}

/// The bucket a request counts in; allocates nothing.
fn rate_key(parts: &[KeyPart], v: &RequestView<'_>) -> RateKey {
    let mut key = RateKey { ip: None, digest: 0 };
    let mut digest: Option<Digest> = None;
    for p in parts {
        match p {
            KeyPart::Ip => key.ip = Some(v.client),
            KeyPart::Header(h) => {
                let value = v.headers.get(h.as_str()).unwrap_or_default();
                digest.get_or_insert_with(Digest::new).part(1, value);
            }
            KeyPart::Route => digest.get_or_insert_with(Digest::new).part(2, v.route.as_bytes()),
            KeyPart::Global => {}
        }
    }
    if let Some(d) = digest {
        key.digest = d.finish();
    }
    key
}

fn matches(c: &Condition, v: &RequestView<'_>) -> bool {
    match c {
        Condition::Methods(ms) => ms.contains(v.method),
        Condition::Host(h) => match h.strip_prefix('.') {
            Some(_) => v.host.len() > h.len() && v.host.ends_with(h.as_str()),
            None => v.host == h,
        },
        Condition::PathPrefix(p) => v.path.starts_with(p.as_str()),
        Condition::PathPrefixNoCase(p) => v
            .path
            .as_bytes()
            .get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p.as_bytes())),
        Condition::PathRegex(r) => r.is_match(v.path),
        Condition::Header { name, test } => {
            let mut hit = false;
            v.headers.each_value(name.as_str(), &mut |x| {
                hit = match test {
                    HeaderTest::Present => true,
                    HeaderTest::Equals(want) => x == want.as_bytes(),
                    // As `HeaderValue::to_str`: visible ASCII only.
                    HeaderTest::Regex(r) => std::str::from_utf8(x)
                        .ok()
                        .filter(|s| s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)))
                        .is_some_and(|s| r.is_match(s)),
                };
                !hit
            });
            hit
        }
        Condition::Query { name, equals } => v.query.is_some_and(|q| {
            q.split('&').any(|kv| {
                let (k, val) = kv.split_once('=').unwrap_or((kv, ""));
                k == name && equals.as_ref().is_none_or(|e| e == val)
            })
        }),
        Condition::Client(nets) => nets.iter().any(|n| n.contains(&v.client)),
        Condition::Sni(s) => v.sni.is_some_and(|x| x.eq_ignore_ascii_case(s)),
    }
}

/// Runs the rules in order; with `shared` (the fleet's Redis is
/// configured), a cluster-scope rate limit that matches is handed back as
/// [`Verdict::Shared`] instead of counted locally.
pub fn evaluate<'a>(rules: &'a [RuleRt], v: &RequestView<'_>, shared: bool) -> Verdict<'a> {
    for (at, r) in rules.iter().enumerate() {
        if !r.rule.conditions.iter().all(|c| matches(c, v)) {
            continue;
        }
        if let Action::RateLimit { key, cluster, .. } = &r.rule.action {
            if *cluster && shared {
                return Verdict::Shared {
                    at,
                    rule: r,
                    key: fleet_key(&r.rule.name, key, v),
                };
            }
            if let Some(reject) = r.check_local(v) {
                return reject;
            }
            continue;
        }
        r.hits.fetch_add(1, Relaxed);
        match &r.rule.action {
            Action::Allow => return Verdict::Pass,
            Action::RateLimit { .. } => {}
            Action::Log => {
                if r.may_log() {
                    tracing::info!(rule = %r.rule.name, client = %v.client, method = %v.method, path = v.path, "firewall rule matched (log)");
                }
            }
            Action::Deny { status, .. } => {
                if r.may_log() {
                    tracing::info!(rule = %r.rule.name, client = %v.client, method = %v.method, path = v.path, "request denied");
                }
                return Verdict::Reject {
                    rule: r,
                    status: *status,
                    body: r.body.clone(),
                    delay: Duration::ZERO,
                    retry_after: None,
                };
            }
            Action::Tarpit { delay, status, .. } => {
                if r.may_log() {
                    tracing::info!(rule = %r.rule.name, client = %v.client, path = v.path, "request tarpitted");
                }
                return Verdict::Reject {
                    rule: r,
                    status: *status,
                    body: r.body.clone(),
                    delay: *delay,
                    retry_after: None,
                };
            }
        }
    }
    Verdict::Pass
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderName};

    fn rule(name: &str, conditions: Vec<Condition>, action: Action) -> RuleRt {
        RuleRt::new(
            Rule {
                name: name.into(),
                listeners: None,
                conditions,
                action,
            },
            Arc::default(),
            &RuleLimiters::default(),
        )
    }

    #[test]
    fn a_rules_limiter_is_kept_while_its_spec_holds() {
        let nz = |n| std::num::NonZeroU32::new(n).expect("non-zero");
        let store = RuleLimiters::default();
        let key = RateKey::ip("192.0.2.1".parse().expect("ip"));
        let spec = (nz(5), nz(5), vec![KeyPart::Ip]);
        let a = store.get("login", spec.clone());
        for _ in 0..5 {
            assert!(a.check(&key).is_ok());
        }
        let again = store.get("login", spec.clone());
        assert!(Arc::ptr_eq(&a, &again), "same rule, same spec: same buckets");
        assert!(again.check(&key).is_err(), "the bucket was not refilled");
        let by_route = store.get("login", (nz(5), nz(5), vec![KeyPart::Route]));
        assert!(!Arc::ptr_eq(&a, &by_route), "a new key makes a new limiter");
        let faster = store.get("login", (nz(50), nz(5), vec![KeyPart::Route]));
        assert!(!Arc::ptr_eq(&by_route, &faster), "a new rate makes a new limiter");
        store.keep_only(["other"].into_iter());
        assert!(!Arc::ptr_eq(
            &faster,
            &store.get("login", (nz(50), nz(5), vec![KeyPart::Route]))
        ));
    }

    fn deny() -> Action {
        Action::Deny {
            status: StatusCode::FORBIDDEN,
            body: "no".into(),
        }
    }

    #[test]
    fn first_decisive_rule_wins() {
        let mut h = HeaderMap::new();
        h.insert("x-debug", "1".parse().expect("value"));
        let rules = vec![
            rule(
                "office",
                vec![Condition::Client(vec!["10.0.0.0/8".parse().expect("net")])],
                Action::Allow,
            ),
            rule("audit", vec![Condition::PathPrefix("/admin".into())], Action::Log),
            rule("admin", vec![Condition::PathPrefix("/admin".into())], deny()),
            rule(
                "debug",
                vec![Condition::Header {
                    name: HeaderName::from_static("x-debug"),
                    test: HeaderTest::Equals("1".into()),
                }],
                deny(),
            ),
            rule(
                "q",
                vec![
                    Condition::Query {
                        name: "debug".into(),
                        equals: None,
                    },
                    Condition::Methods(vec![Method::POST]),
                ],
                deny(),
            ),
        ];
        let view = |path, client: &str, headers: &'static HeaderMap, query| RequestView {
            method: &Method::GET,
            host: "a.test",
            path,
            query,
            headers,
            client: client.parse().expect("ip"),
            sni: None,
            route: "-",
        };
        static EMPTY: std::sync::OnceLock<HeaderMap> = std::sync::OnceLock::new();
        let empty = EMPTY.get_or_init(HeaderMap::new);
        assert!(matches!(
            evaluate(&rules, &view("/admin/x", "10.1.1.1", empty, None), false),
            Verdict::Pass
        ));
        match evaluate(&rules, &view("/admin/x", "192.0.2.1", empty, None), false) {
            Verdict::Reject { rule, status, .. } => {
                assert_eq!((rule.rule.name.as_str(), status.as_u16()), ("admin", 403))
            }
            v => panic!("{v:?}"),
        }
        assert_eq!(rules[1].hits.load(Relaxed), 1, "log rules count and go on");
        let with_debug: &'static HeaderMap = Box::leak(Box::new(h));
        assert!(matches!(
            evaluate(&rules, &view("/", "192.0.2.1", with_debug, None), false),
            Verdict::Reject { .. }
        ));
        assert!(
            matches!(
                evaluate(&rules, &view("/", "192.0.2.1", empty, Some("debug=1")), false),
                Verdict::Pass
            ),
            "GET is not POST"
        );
        assert!(
            matches!(
                evaluate(&rules, &view("/ADMIN/x", "192.0.2.1", empty, None), false),
                Verdict::Pass
            ),
            "a case-sensitive prefix does not match another case"
        );
    }

    #[test]
    fn case_insensitive_prefixes_match_any_case() {
        let rules = vec![rule(
            "admin",
            vec![Condition::PathPrefixNoCase("/admin".into())],
            deny(),
        )];
        static EMPTY: std::sync::OnceLock<HeaderMap> = std::sync::OnceLock::new();
        let empty = EMPTY.get_or_init(HeaderMap::new);
        for (path, denied) in [
            ("/admin", true),
            ("/ADMIN/x", true),
            ("/AdMiN", true),
            ("/adm", false),
            ("/", false),
            ("/other/admin", false),
            ("/\u{e9}dmin", false),
        ] {
            let v = RequestView {
                method: &Method::GET,
                host: "a.test",
                path,
                query: None,
                headers: empty,
                client: "192.0.2.1".parse().expect("ip"),
                sni: None,
                route: "-",
            };
            assert_eq!(
                matches!(evaluate(&rules, &v, false), Verdict::Reject { .. }),
                denied,
                "{path}"
            );
        }
    }
}
