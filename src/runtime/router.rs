//! Route selection: the most specific host first (exact, then the longest
//! `*.suffix`, then any), and within a host the longest path prefix. A
//! prefix matches whole path segments: `/api` matches `/api` and
//! `/api/users`, not `/apix`; a prefix ending in `/` matches anything below.

use std::sync::Arc;

use crate::config::model::{HostMatch, Route};
use crate::stats::{RequestStats, StatsStore};

#[derive(Debug, Clone)]
struct Entry {
    host: HostMatch,
    prefix: String,
    pool: usize,
    key: String,
    stats: Arc<RequestStats>,
    max_body: Option<u64>,
    upgrades: Box<[String]>,
    waf: Option<crate::config::model::RouteWaf>,
    waf_exclude: crate::waf::Exclusions,
}

/// The route a request matched.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    pub pool: usize,
    pub stats: &'a Arc<RequestStats>,
    /// The route's metrics key.
    pub key: &'a str,
    /// The route's own body limit, if it has one.
    pub max_body: Option<u64>,
    /// Upgrade protocols the route forwards (lower-case names).
    pub upgrades: &'a [String],
    /// The route's own WAF mode, if it has one.
    pub waf: Option<crate::config::model::RouteWaf>,
    /// The route's WAF exclusions.
    pub waf_exclude: &'a crate::waf::Exclusions,
}

/// A route's key in metrics: `host/path -> pool` (`*` for any host).
pub fn route_key(r: &Route, pool: &str) -> String {
    let host = match &r.host {
        HostMatch::Any => "*".to_string(),
        HostMatch::Exact(h) => h.clone(),
        HostMatch::Suffix(s) => format!("*{s}"),
    };
    format!("{host}{} -> {pool}", r.path_prefix)
}

/// The routes of one listener, sorted for first-match lookup.
#[derive(Debug, Clone, Default)]
pub struct Router {
    entries: Vec<Entry>,
}

impl Router {
    /// Keeps the routes that apply to `listener`, most specific first.
    pub fn new(routes: &[Route], listener: &str, pool_names: &[&str], store: &StatsStore) -> Self {
        let mut entries: Vec<Entry> = routes
            .iter()
            .filter(|r| {
                r.listeners
                    .as_ref()
                    .is_none_or(|ls| ls.iter().any(|l| l == listener))
            })
            .map(|r| {
                let key = route_key(r, pool_names.get(r.pool).copied().unwrap_or("?"));
                Entry {
                    host: r.host.clone(),
                    prefix: r.path_prefix.clone(),
                    pool: r.pool,
                    // Counted per listener: a route several listeners
                    // share has one set of counters on each, so that a
                    // sum over listeners counts every request once.
                    stats: store.route(&format!("{listener}\u{1f}{key}")),
                    key,
                    max_body: r.max_body,
                    upgrades: r.upgrades.clone().into_boxed_slice(),
                    waf: r.waf,
                    waf_exclude: r.waf_exclude.clone(),
                }
            })
            .collect();
        entries.sort_by_key(|e| {
            let host_rank = match &e.host {
                HostMatch::Exact(_) => (0, 0),
                HostMatch::Suffix(s) => (1, usize::MAX - s.len()),
                HostMatch::Any => (2, 0),
            };
            (host_rank, usize::MAX - e.prefix.len())
        });
        Router { entries }
    }

    /// Every route's metrics key and counters.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &Arc<RequestStats>)> {
        self.entries.iter().map(|e| (e.key.as_str(), &e.stats))
    }

    /// The pool index and the route's counters for a request; `host` is
    /// lower-case without a port.
    pub fn find(&self, host: &str, path: &str) -> Option<Hit<'_>> {
        self.entries
            .iter()
            .find(|e| host_matches(&e.host, host) && prefix_matches(&e.prefix, path))
            .map(|e| Hit {
                pool: e.pool,
                stats: &e.stats,
                key: e.key.as_str(),
                max_body: e.max_body,
                upgrades: &e.upgrades,
                waf: e.waf,
                waf_exclude: &e.waf_exclude,
            })
    }
}

fn host_matches(m: &HostMatch, host: &str) -> bool {
    match m {
        HostMatch::Any => true,
        HostMatch::Exact(h) => h == host,
        HostMatch::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        None => false,
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
    }
}

/// Lower-cased host without port, from `Host` or the URI authority.
pub fn normalise_host(raw: &str) -> std::borrow::Cow<'_, str> {
    let h = raw.trim();
    let h = if let Some(rest) = h.strip_prefix('[') {
        // [v6]:port
        rest.split(']').next().unwrap_or(rest)
    } else {
        h.rsplit_once(':').map_or(h, |(a, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                a
            } else {
                h
            }
        })
    };
    let h = h.trim_end_matches('.');
    if h.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(h.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: HostMatch, prefix: &str, pool: usize) -> Route {
        Route {
            listeners: None,
            host,
            path_prefix: prefix.to_string(),
            pool,
            max_body: None,
            upgrades: vec!["websocket".into()],
            waf: None,
            waf_exclude: Default::default(),
        }
    }

    #[test]
    fn longest_and_most_specific_first() {
        let routes = vec![
            route(HostMatch::Any, "/", 0),
            route(HostMatch::Any, "/api", 1),
            route(HostMatch::Suffix(".example.com".into()), "/", 2),
            route(HostMatch::Exact("www.example.com".into()), "/", 3),
            route(HostMatch::Exact("www.example.com".into()), "/static/", 4),
        ];
        let r = Router::new(
            &routes,
            "any",
            &["p0", "p1", "p2", "p3", "p4"],
            &StatsStore::default(),
        );
        let find = |h: &str, p: &str| r.find(h, p).map(|hit| hit.pool);
        assert_eq!(find("other.org", "/"), Some(0));
        assert_eq!(find("other.org", "/api/x"), Some(1));
        assert_eq!(find("other.org", "/api"), Some(1));
        assert_eq!(find("other.org", "/apix"), Some(0));
        assert_eq!(find("a.example.com", "/api"), Some(2));
        assert_eq!(find("example.com", "/"), Some(0));
        assert_eq!(find("www.example.com", "/static/x.css"), Some(4));
        assert_eq!(find("www.example.com", "/index.html"), Some(3));
    }

    #[test]
    fn listener_filter_and_no_match() {
        let mut only = route(HostMatch::Exact("a.test".into()), "/", 0);
        only.listeners = Some(vec!["public".into()]);
        let r = Router::new(&[only], "internal", &["p"], &StatsStore::default());
        assert!(r.find("a.test", "/").is_none());
    }

    #[test]
    fn host_normalisation() {
        assert_eq!(normalise_host("Example.COM:8443"), "example.com");
        assert_eq!(normalise_host("[::1]:443"), "::1");
        assert_eq!(normalise_host("example.com."), "example.com");
    }
}
