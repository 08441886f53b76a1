//! Turns a TOML document into a validated [`Model`].
//!
//! Parsing errors come from serde/toml with a byte span; validation errors
//! carry the span of the offending value (kept with `toml::Spanned`). Both
//! are rendered as `file:line:column: key: what is wrong`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::HeaderValue;
use toml::Spanned;

use super::env::{read_text, CertFault, Env};
use super::model::{self, Algorithm, HashKey, Model};
use super::schema;
use crate::units::{parse_duration, parse_size};

/// Everything that can be wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the config file: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", .0)]
    At(Located),
}

/// A problem at a place in a config file.
#[derive(Debug)]
pub struct Located {
    pub path: String,
    pub line: usize,
    pub column: usize,
    /// The key path, e.g. `pool[0].server[1].weight`; empty when unknown.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.path, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Reads and validates a config file; files, names and certificates it
/// mentions are reached through `env`.
pub fn load_file(path: &Path, env: &dyn Env) -> Result<Model, ConfigError> {
    let text = read_text(env, path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut m = load_str(&text, &path.display().to_string(), &base, env)?;
    m.source = Some(path.to_path_buf());
    Ok(m)
}

/// Validates a config held in memory. `name` is used in messages; relative
/// paths in the config are resolved against `base` (made absolute first,
/// so that every path in the model and in messages is absolute).
pub fn load_str(text: &str, name: &str, base: &Path, env: &dyn Env) -> Result<Model, ConfigError> {
    let base = absolute_dir(base, env);
    let cx = Cx {
        text,
        name,
        base: &base,
        env,
    };
    let file: schema::File = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let key = super::diagnose::key_at(text, span.start);
        let (key, mut message) = super::diagnose::explain(e.message().trim_end(), &key);
        if message.trim().is_empty() {
            message = super::diagnose::silent_error(text, span.start);
        }
        cx.err(span, &key, message)
    })?;
    cx.validate(file)
}

/// The config file's folder as an absolute path (symbolic links resolved
/// when the folder exists).
fn absolute_dir(base: &Path, env: &dyn Env) -> PathBuf {
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    env.canonicalize(base)
        .or_else(|_| std::path::absolute(base))
        .map_or_else(|_| base.to_path_buf(), |b| lexical_normal(&b))
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn lexical_normal(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    out
}

// === impl Cx ===

/// What a validation step needs to report a located error.
pub(super) struct Cx<'a> {
    text: &'a str,
    name: &'a str,
    base: &'a Path,
    pub(super) env: &'a dyn Env,
}

pub(super) type R<T> = Result<T, ConfigError>;

impl Cx<'_> {
    pub(super) fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        let upto = &self.text[..span.start.min(self.text.len())];
        let line = upto.matches('\n').count() + 1;
        let column = upto.len() - upto.rfind('\n').map_or(0, |i| i + 1) + 1;
        ConfigError::At(Located {
            path: self.name.to_string(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        })
    }

    pub(super) fn at<T>(&self, v: &Spanned<T>, key: &str, message: impl Into<String>) -> ConfigError {
        self.err(v.span(), key, message)
    }

    /// A path written in the config, resolved against the config file's
    /// folder, with `.` and `..` taken out.
    pub(super) fn path(&self, p: &str) -> PathBuf {
        lexical_normal(&self.base.join(p))
    }

    pub(super) fn duration(
        &self,
        v: &Option<Spanned<String>>,
        key: &str,
        default: std::time::Duration,
    ) -> R<std::time::Duration> {
        match v {
            None => Ok(default),
            Some(s) => parse_duration(s.get_ref()).map_err(|m| self.at(s, key, m)),
        }
    }

    pub(super) fn socket_addr(&self, v: &Spanned<String>, key: &str) -> R<SocketAddr> {
        let s = v.get_ref();
        if let Ok(a) = s.parse() {
            return Ok(a);
        }
        let addrs = self.env.resolve(s).map_err(|e| {
            self.at(
                v,
                key,
                format!("`{s}` is not an address: write it as IP:PORT or HOST:PORT ({e})"),
            )
        })?;
        addrs
            .into_iter()
            .next()
            .ok_or_else(|| self.at(v, key, format!("`{s}` resolves to no address")))
    }

    fn validate(&self, f: schema::File) -> R<Model> {
        let workers = match &f.runtime.workers {
            Some(w) if *w.get_ref() > 1024 => {
                return Err(self.at(w, "runtime.workers", "at most 1024 worker threads"))
            }
            Some(w) if *w.get_ref() > 0 => *w.get_ref() as usize,
            _ => self.env.cores(),
        };
        let state_dir = self.path(f.runtime.state_dir.as_deref().unwrap_or(".rampart"));
        let log = model::LogSettings {
            level: f.log.level.clone(),
            json: match &f.log.format {
                None => None,
                Some(s) => match s.get_ref().as_str() {
                    "json" => Some(true),
                    "text" => Some(false),
                    "auto" => None,
                    other => {
                        return Err(self.at(
                            s,
                            "log.format",
                            format!("unknown format `{other}`: use text, json or auto"),
                        ))
                    }
                },
            },
        };
        let t = &f.timeouts;
        let d = model::Timeouts::default();
        let timeouts = model::Timeouts {
            connect: self.duration(&t.connect, "timeouts.connect", d.connect)?,
            response_header: self.duration(
                &t.response_header,
                "timeouts.response_header",
                d.response_header,
            )?,
            client_idle: self.duration(&t.client_idle, "timeouts.client_idle", d.client_idle)?,
            request_header: self.duration(&t.request_header, "timeouts.request_header", d.request_header)?,
            backend_idle: self.duration(&t.backend_idle, "timeouts.backend_idle", d.backend_idle)?,
            request: self.duration(&t.request, "timeouts.request", d.request)?,
            drain: self.duration(&t.drain, "timeouts.drain", d.drain)?,
        };

        let mut addrs: HashMap<SocketAddr, String> = HashMap::new();
        let mut claim_addr = |a: SocketAddr, v: &Spanned<String>, key: &str, who: String| {
            if a.port() != 0 {
                if let Some(prev) = addrs.insert(a, who) {
                    return Err(self.at(
                        v,
                        key,
                        format!("address {a} is already used by {prev}: give each listener its own address"),
                    ));
                }
            }
            Ok(())
        };

        let listeners = self.listeners(&f.listeners, &mut claim_addr)?;
        let mut origins = Vec::new();
        for (i, o) in f.origins.iter().enumerate() {
            let key = format!("origin[{i}]");
            let addr = self.socket_addr(&o.address, &format!("{key}.address"))?;
            claim_addr(
                addr,
                &o.address,
                &format!("{key}.address"),
                format!("origin `{}`", o.name.get_ref()),
            )?;
            let content = match (&o.root, o.demo) {
                (Some(r), false) => {
                    let dir = self.path(r.get_ref());
                    if !self.env.is_dir(&dir) {
                        return Err(self.at(
                            r,
                            &format!("{key}.root"),
                            format!("`{}` is not a directory", dir.display()),
                        ));
                    }
                    model::OriginContent::Dir(dir)
                }
                (None, true) => model::OriginContent::Demo,
                (Some(r), true) => {
                    return Err(self.at(
                        r,
                        &format!("{key}.root"),
                        "set either `root` or `demo = true`, not both",
                    ))
                }
                (None, false) => {
                    return Err(self.at(&o.name, &key, "an origin needs `root = \"DIR\"` or `demo = true`"))
                }
            };
            origins.push(model::Origin {
                name: o.name.get_ref().clone(),
                addr,
                content,
            });
        }

        let pools = self.pools(&f.pools, &origins)?;
        let pools_for_alerts: Vec<(String, Vec<String>)> = pools
            .iter()
            .map(|p| (p.name.clone(), p.servers.iter().map(|s| s.name.clone()).collect()))
            .collect();
        let listener_names: Vec<String> = listeners.iter().map(|l| l.name.clone()).collect();
        let routes = self.routes(&f.routes, &pools, &listeners)?;
        if routes.is_empty() && !pools.is_empty() && listeners.iter().any(|l| !is_redirect(l)) {
            // A config with listeners and pools but no routes would answer 404
            // to everything: say so instead of running silently.
            return Err(self.err(
                0..0,
                "route",
                "no [[route]] sends traffic to a pool: add one, e.g. `[[route]]\\npool = \"NAME\"`",
            ));
        }
        Ok(Model {
            source: None,
            workers,
            state_dir,
            log,
            timeouts,
            generate_local_ca: f.tls.generate_local_ca.unwrap_or(true),
            admin: self.admin(&f.admin)?,
            metrics_enabled: f.metrics.enabled.unwrap_or(true),
            limits: self.limits(&f.limits)?,
            topology: match &f.topology {
                None => None,
                Some(t) => Some(self.topology(t)?),
            },
            max_connections_per_client: f.firewall.max_connections_per_client.unwrap_or(0),
            new_connections_per_client_per_second: f
                .firewall
                .new_connections_per_client_per_second
                .unwrap_or(0),
            trusted_proxies: match &f.firewall.trusted_proxies {
                None => Vec::new(),
                Some(list) => {
                    let mut nets = Vec::new();
                    for s in list.get_ref() {
                        nets.push(
                            super::syntax::parse_net(s)
                                .map_err(|e| self.at(list, "firewall.trusted_proxies", e))?,
                        );
                    }
                    nets
                }
            },
            bans: match &f.bans.after {
                None => None,
                Some(a) if *a.get_ref() == 0 => return Err(self.at(a, "bans.after", "at least 1 violation")),
                Some(a) => Some(model::BanPolicy {
                    after: *a.get_ref(),
                    window: self.duration(&f.bans.window, "bans.window", Duration::from_secs(60))?,
                    duration: self.duration(&f.bans.duration, "bans.duration", Duration::from_secs(600))?,
                }),
            },
            access_log: self.access_log(&f.access_log)?,
            alerts: self.alerts(&f.alerts, &f.alert_rules, &pools_for_alerts, &listener_names)?,
            listeners,
            pools,
            routes,
            origins,
            rules: self.rules(&f.rules, &listener_names)?,
        })
    }

    fn listeners(
        &self,
        ls: &[schema::Listener],
        claim: &mut impl FnMut(SocketAddr, &Spanned<String>, &str, String) -> R<()>,
    ) -> R<Vec<model::Listener>> {
        let mut out = Vec::new();
        let mut names = HashSet::new();
        for (i, l) in ls.iter().enumerate() {
            let key = format!("listener[{i}]");
            let name = l.name.get_ref().clone();
            if !names.insert(name.clone()) {
                return Err(self.at(
                    &l.name,
                    &format!("{key}.name"),
                    format!("listener name `{name}` is used twice"),
                ));
            }
            let addr = self.socket_addr(&l.address, &format!("{key}.address"))?;
            claim(
                addr,
                &l.address,
                &format!("{key}.address"),
                format!("listener `{name}`"),
            )?;
            let proto = l.protocol.as_ref().map_or("http", |p| p.get_ref().as_str());
            let kind = match proto {
                "http" => {
                    if let Some(c) = l.certificates.first() {
                        return Err(self.at(
                            &c.cert,
                            &format!("{key}.certificate"),
                            "certificates need `protocol = \"https\"`",
                        ));
                    }
                    if let Some(h) = &l.hsts_max_age {
                        return Err(self.at(
                            h,
                            &format!("{key}.hsts_max_age"),
                            "HSTS is only sent on https listeners",
                        ));
                    }
                    model::ListenerKind::Http {
                        redirect_to: l.redirect_to.as_ref().map(|r| r.get_ref().clone()),
                    }
                }
                "https" => {
                    if let Some(r) = &l.redirect_to {
                        return Err(self.at(
                            r,
                            &format!("{key}.redirect_to"),
                            "redirect_to is for plain http listeners",
                        ));
                    }
                    let mut certs = Vec::new();
                    for (j, c) in l.certificates.iter().enumerate() {
                        certs.push(self.certificate(c, &format!("{key}.certificate[{j}]"))?);
                    }
                    let hsts = match &l.hsts_max_age {
                        None => None,
                        Some(h) => {
                            let d = parse_duration(h.get_ref())
                                .map_err(|m| self.at(h, &format!("{key}.hsts_max_age"), m))?;
                            let mut v = format!("max-age={}", d.as_secs());
                            if l.hsts_include_subdomains {
                                v.push_str("; includeSubDomains");
                            }
                            HeaderValue::from_str(&v).ok()
                        }
                    };
                    model::ListenerKind::Https(model::HttpsSettings {
                        certs,
                        hsts,
                        http2: l.http2.unwrap_or(true),
                    })
                }
                other => {
                    let p = l.protocol.as_ref().map_or(&l.name, |p| p);
                    return Err(self.at(
                        p,
                        &format!("{key}.protocol"),
                        format!("unknown protocol `{other}`: use http or https"),
                    ));
                }
            };
            let clients = self.clients(l, &key)?;
            let proxy_protocol = l.proxy_protocol.unwrap_or(false);
            out.push(model::Listener {
                name,
                addr,
                kind,
                clients,
                proxy_protocol,
            });
        }
        // Redirect targets must be https listeners of this file.
        for (i, l) in ls.iter().enumerate() {
            if let Some(r) = &l.redirect_to {
                let ok = out
                    .iter()
                    .any(|o| &o.name == r.get_ref() && matches!(o.kind, model::ListenerKind::Https(_)));
                if !ok {
                    return Err(self.at(
                        r,
                        &format!("listener[{i}].redirect_to"),
                        format!("no https listener is named `{}`", r.get_ref()),
                    ));
                }
            }
        }
        Ok(out)
    }

    fn pools(&self, ps: &[schema::Pool], origins: &[model::Origin]) -> R<Vec<model::Pool>> {
        let mut out: Vec<model::Pool> = Vec::new();
        for (i, p) in ps.iter().enumerate() {
            let key = format!("pool[{i}]");
            let name = p.name.get_ref().clone();
            if out.iter().any(|o| o.name == name) {
                return Err(self.at(
                    &p.name,
                    &format!("{key}.name"),
                    format!("pool name `{name}` is used twice"),
                ));
            }
            let algorithm = match &p.algorithm {
                None => Algorithm::RoundRobin,
                Some(a) => Algorithm::parse(a.get_ref()).ok_or_else(|| {
                    self.at(
                        a,
                        &format!("{key}.algorithm"),
                        format!(
                        "unknown algorithm `{}`: use round_robin, weighted, least_requests, p2c_ewma or hash",
                        a.get_ref()
                    ),
                    )
                })?,
            };
            let hash_key = match &p.hash_key {
                None => HashKey::ClientIp,
                Some(h) => {
                    if algorithm != Algorithm::Hash {
                        return Err(self.at(
                            h,
                            &format!("{key}.hash_key"),
                            "hash_key is only used with algorithm = \"hash\"",
                        ));
                    }
                    HashKey::parse(h.get_ref()).ok_or_else(|| {
                        self.at(
                            h,
                            &format!("{key}.hash_key"),
                            "use client_ip, header:NAME or cookie:NAME",
                        )
                    })?
                }
            };
            if let Some(c) = &p.sticky_cookie {
                if !super::syntax::is_valid_cookie_name(c.get_ref()) {
                    return Err(self.at(
                        c,
                        &format!("{key}.sticky_cookie"),
                        format!("`{}` is not a valid cookie name", c.get_ref()),
                    ));
                }
            }
            let protocol = match p.protocol.as_ref().map(|p| p.get_ref().as_str()) {
                None | Some("http1") => model::UpstreamProtocol::Http1,
                Some("h2c") => model::UpstreamProtocol::H2c,
                Some(other) => {
                    let at = p.protocol.as_ref().map_or(&p.name, |x| x);
                    return Err(self.at(
                        at,
                        &format!("{key}.protocol"),
                        format!("unknown protocol `{other}`: use http1 or h2c"),
                    ));
                }
            };
            let list = match &p.servers {
                Some(s) if !s.get_ref().is_empty() => s,
                Some(s) => {
                    return Err(self.at(
                        s,
                        &format!("{key}.server"),
                        format!("pool `{name}` has no servers: add at least one [[pool.server]]"),
                    ))
                }
                None => {
                    return Err(self.at(
                        &p.name,
                        &format!("{key}.server"),
                        format!("pool `{name}` has no servers: add at least one [[pool.server]]"),
                    ))
                }
            };
            let mut servers: Vec<model::Server> = Vec::new();
            for (j, s) in list.get_ref().iter().enumerate() {
                let sk = format!("{key}.server[{j}]");
                let (addr, origin, at) = match (&s.address, &s.origin) {
                    (Some(a), None) => (self.socket_addr(a, &format!("{sk}.address"))?, None, a),
                    (None, Some(o)) => match origins.iter().find(|x| &x.name == o.get_ref()) {
                        Some(x) => (x.addr, Some(x.name.clone()), o),
                        None => {
                            return Err(self.at(
                                o,
                                &format!("{sk}.origin"),
                                format!("no [[origin]] is named `{}`", o.get_ref()),
                            ))
                        }
                    },
                    (Some(a), Some(_)) => {
                        return Err(self.at(
                            a,
                            &format!("{sk}.address"),
                            "set either `address` or `origin`, not both",
                        ))
                    }
                    (None, None) => {
                        return Err(self.at(
                            list,
                            &sk,
                            "a server needs `address = \"IP:PORT\"` or `origin = \"NAME\"`",
                        ))
                    }
                };
                let weight = match &s.weight {
                    None => 1,
                    Some(w) if *w.get_ref() == 0 => {
                        return Err(self.at(
                            w,
                            &format!("{sk}.weight"),
                            "weight must be at least 1 (to stop traffic to a server, remove or drain it)",
                        ))
                    }
                    Some(w) if *w.get_ref() > 10_000 => {
                        return Err(self.at(w, &format!("{sk}.weight"), "weight must be at most 10000"))
                    }
                    Some(w) => *w.get_ref(),
                };
                let sname = s
                    .name
                    .clone()
                    .or_else(|| origin.clone())
                    .unwrap_or_else(|| addr.to_string());
                if servers.iter().any(|o| o.name == sname) {
                    return Err(self.at(
                        at,
                        &format!("{sk}.name"),
                        format!("server name `{sname}` is used twice in pool `{name}`"),
                    ));
                }
                servers.push(model::Server {
                    name: sname,
                    addr,
                    origin,
                    weight,
                    max_requests: s.max_requests.unwrap_or(0),
                });
            }
            out.push(model::Pool {
                name,
                algorithm,
                hash_key,
                sticky_cookie: p.sticky_cookie.as_ref().map(|c| c.get_ref().clone()),
                protocol,
                max_idle_per_server: p.max_idle_per_server.unwrap_or(256),
                max_requests: p.max_requests.as_ref().map_or(0, |m| *m.get_ref()),
                slow_start: self.duration(&p.slow_start, &format!("{key}.slow_start"), Duration::ZERO)?,
                retries: match &p.retries {
                    Some(r) if *r.get_ref() > 10 => {
                        return Err(self.at(r, &format!("{key}.retries"), "at most 10 retries"))
                    }
                    r => r.as_ref().map_or(2, |r| *r.get_ref()),
                },
                retry_budget: self.retry_budget(p, &key)?,
                health_check: match &p.health_check {
                    None => None,
                    Some(h) => Some(self.health_check(h, &format!("{key}.health_check"))?),
                },
                outlier: match &p.outlier {
                    None => model::Outlier::default(),
                    Some(o) => self.outlier(o, &format!("{key}.outlier"))?,
                },
                servers,
            });
        }
        Ok(out)
    }

    fn routes(
        &self,
        rs: &[schema::Route],
        pools: &[model::Pool],
        ls: &[model::Listener],
    ) -> R<Vec<model::Route>> {
        let mut out = Vec::new();
        for (i, r) in rs.iter().enumerate() {
            let key = format!("route[{i}]");
            let pool = pools
                .iter()
                .position(|p| &p.name == r.pool.get_ref())
                .ok_or_else(|| {
                    let known: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
                    self.at(
                        &r.pool,
                        &format!("{key}.pool"),
                        format!(
                            "no pool is named `{}` (pools defined: {})",
                            r.pool.get_ref(),
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    )
                })?;
            let host = match &r.host {
                None => model::HostMatch::Any,
                Some(h) => {
                    let v = h.get_ref().trim().to_ascii_lowercase();
                    if let Some(rest) = v.strip_prefix("*.") {
                        if rest.is_empty() || rest.contains('*') {
                            return Err(self.at(
                                h,
                                &format!("{key}.host"),
                                "write a wildcard host as `*.example.com`",
                            ));
                        }
                        model::HostMatch::Suffix(format!(".{rest}"))
                    } else if v.is_empty() || v.contains('*') || v.contains('/') {
                        return Err(self.at(
                            h,
                            &format!("{key}.host"),
                            "a host is `example.com` or `*.example.com`",
                        ));
                    } else {
                        model::HostMatch::Exact(v)
                    }
                }
            };
            let path_prefix = match &r.path {
                None => "/".to_string(),
                Some(p) if p.get_ref().starts_with('/') => p.get_ref().clone(),
                Some(p) => return Err(self.at(p, &format!("{key}.path"), "a path prefix starts with `/`")),
            };
            let listeners = match &r.listeners {
                None => None,
                Some(names) => {
                    for n in names.get_ref() {
                        if !ls.iter().any(|l| &l.name == n) {
                            return Err(self.at(
                                names,
                                &format!("{key}.listeners"),
                                format!("no listener is named `{n}`"),
                            ));
                        }
                    }
                    Some(names.get_ref().clone())
                }
            };
            let max_body = match &r.max_body {
                None => None,
                Some(m) => {
                    Some(parse_size(m.get_ref()).map_err(|e| self.at(m, &format!("{key}.max_body"), e))?)
                }
            };
            let upgrades = match &r.upgrades {
                None => vec!["websocket".to_string()],
                Some(list) => self.upgrades(list, &format!("{key}.upgrades"))?,
            };
            out.push(model::Route {
                listeners,
                host,
                path_prefix,
                pool,
                max_body,
                upgrades,
            });
        }
        Ok(out)
    }
}

impl Cx<'_> {
    /// A route's `upgrades`: protocol names, lower-cased; never `h2c`.
    fn upgrades(&self, list: &Spanned<Vec<String>>, key: &str) -> R<Vec<String>> {
        let mut out = Vec::new();
        for p in list.get_ref() {
            let name = p.trim().to_ascii_lowercase();
            let token = |b: u8| b.is_ascii_alphanumeric() || b"-_.+".contains(&b);
            if name.is_empty() || !name.bytes().all(token) {
                return Err(self.at(
                    list,
                    key,
                    format!("`{p}` is not a protocol name such as `websocket`"),
                ));
            }
            if name == "h2c" {
                return Err(self.at(
                    list,
                    key,
                    "an `h2c` upgrade would turn the connection into an HTTP/2 tunnel past every rule; \
                     use `protocol = \"h2c\"` on the pool to speak HTTP/2 to its servers",
                ));
            }
            out.push(name);
        }
        Ok(out)
    }
}

fn is_redirect(l: &model::Listener) -> bool {
    matches!(l.kind, model::ListenerKind::Http { redirect_to: Some(_) })
}

impl Cx<'_> {
    /// A `[[listener.certificate]]`: both files read, and the pair checked.
    fn certificate(&self, c: &schema::Certificate, key: &str) -> R<model::CertSpec> {
        let cert_path = self.path(c.cert.get_ref());
        let key_path = self.path(c.key.get_ref());
        let cert_pem = self.env.read(&cert_path).map_err(|e| {
            self.at(
                &c.cert,
                &format!("{key}.cert"),
                format!("cannot read certificate file {}: {e}", cert_path.display()),
            )
        })?;
        let key_pem = self.env.read(&key_path).map_err(|e| {
            self.at(
                &c.key,
                &format!("{key}.key"),
                format!("cannot use private key {}: {e}", key_path.display()),
            )
        })?;
        let facts = self
            .env
            .inspect_cert(&cert_path, &cert_pem, &key_path, &key_pem)
            .map_err(|f| match f {
                CertFault::Key(m) => self.at(&c.key, &format!("{key}.key"), m),
                CertFault::Cert(m) => self.at(&c.cert, &format!("{key}.cert"), m),
            })?;
        Ok(model::CertSpec::new(
            cert_path,
            cert_pem,
            key_path,
            key_pem,
            c.names.as_ref().map(|n| n.get_ref().clone()),
            facts,
        ))
    }
}
