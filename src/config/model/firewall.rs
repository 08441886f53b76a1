//! The firewall's part of the validated model: request rules, the
//! automatic ban policy, and the host topology the nftables rulesets are
//! rendered from. The firewall module runs them (`firewall::rules::RuleRt`,
//! `firewall::bans::Bans`, `firewall::nft::render`).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use http::{HeaderName, Method, StatusCode};
use ipnet::IpNet;
use regex::Regex;

/// A request rule: every condition must hold for the action to apply.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// Listener names; None = every listener.
    pub listeners: Option<Vec<String>>,
    pub conditions: Vec<Condition>,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub enum Condition {
    Methods(Vec<Method>),
    /// Lower-case exact host, or `.suffix` for `*.suffix`.
    Host(String),
    /// A prefix of the normalised path (normalised itself).
    PathPrefix(String),
    /// A prefix compared ignoring ASCII case (for case-insensitive backends).
    PathPrefixNoCase(String),
    /// With `path_case_insensitive`, compiled case-insensitive.
    PathRegex(Regex),
    Header {
        name: HeaderName,
        test: HeaderTest,
    },
    Query {
        name: String,
        equals: Option<String>,
    },
    Client(Vec<IpNet>),
    /// Lower-case.
    Sni(String),
}

#[derive(Debug, Clone)]
pub enum HeaderTest {
    Present,
    Equals(String),
    Regex(Regex),
}

/// What a rate limit counts by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    Ip,
    Header(HeaderName),
    Route,
    /// One bucket for every request the rule matches.
    Global,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Allow,
    /// Over the limit: 429 with `Retry-After`; within it, on to the next rule.
    RateLimit {
        per_second: NonZeroU32,
        burst: NonZeroU32,
        key: Vec<KeyPart>,
        /// Buckets shared by the fleet (`[cluster] redis`) instead of local.
        cluster: bool,
    },
    Deny {
        status: StatusCode,
        body: String,
    },
    Tarpit {
        delay: Duration,
        status: StatusCode,
        body: String,
    },
    Log,
}

impl Action {
    /// The name users write in `action`.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::RateLimit { .. } => "rate_limit",
            Action::Deny { .. } => "deny",
            Action::Tarpit { .. } => "tarpit",
            Action::Log => "log",
        }
    }
}

/// When violations become a ban.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanPolicy {
    pub after: u32,
    pub window: Duration,
    pub duration: Duration,
}

/// A host's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Lb,
    Web,
    App,
    Db,
    Monitor,
    /// A member of the fleet's etcd (`[fleet]`).
    Etcd,
}

impl Role {
    /// Parses `lb`, `web`, `app`, `db`, `monitor` or `etcd`.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "lb" => Role::Lb,
            "web" => Role::Web,
            "app" => Role::App,
            "db" => Role::Db,
            "monitor" => Role::Monitor,
            "etcd" => Role::Etcd,
            _ => return None,
        })
    }
}

/// One host of the infrastructure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub addresses: Vec<IpAddr>,
    pub roles: Vec<Role>,
    /// Service ports of `web`/`app` roles (empty: 80 for web, 8080 for app).
    pub ports: Vec<u16>,
    /// Extra rules for the input chain, in nft syntax.
    pub extra: Vec<String>,
    /// Extra rules for the output chain, in nft syntax.
    pub extra_out: Vec<String>,
    /// What else the host may open connections to (`egress_to`).
    pub egress_to: Vec<Dependency>,
    /// Outgoing traffic left unrestricted (`egress_open`).
    pub egress_open: bool,
}

/// One entry of `egress_to`: networks and a TCP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// As written (`10.0.0.5:6379`, `redis1:6379`).
    pub label: String,
    pub nets: Vec<IpNet>,
    pub port: u16,
}

/// The infrastructure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub admin: Vec<IpNet>,
    pub ssh_port: u16,
    pub admin_port: u16,
    pub metrics_port: u16,
    pub db_port: u16,
    /// DNS resolvers, NTP servers and package mirrors every host may reach.
    pub dns: Vec<IpNet>,
    pub ntp: Vec<IpNet>,
    pub mirrors: Vec<IpNet>,
    /// Addresses that float between the `lb` hosts.
    pub floating: Vec<IpAddr>,
    /// What this config's own instance, on the `lb` hosts, needs from the
    /// network (derived from the rest of the config).
    pub balancer: BalancerNeeds,
    pub hosts: Vec<Host>,
}

/// What the instance this config runs (on the `lb` hosts) connects to or
/// serves beyond balancing, so that their firewalls let it through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BalancerNeeds {
    /// Ports of its database endpoints (`role = "writer"`/`"reader"`
    /// listeners), which web and app hosts connect to; the balancers then
    /// reach the `db` hosts' database port.
    pub db_ports: Vec<u16>,
    /// UDP ports of its HTTP/3 listeners (QUIC), open to everyone as the
    /// TCP side is.
    pub quic_ports: Vec<u16>,
    /// What it connects to by address: Redis, fleet peers, the alert webhook.
    pub egress: Vec<Dependency>,
    /// Certificates come from an ACME CA, whose addresses are not fixed.
    pub acme: bool,
    /// What it connects to by name, which a ruleset cannot pin (`what host:port`).
    pub by_name: Vec<String>,
}

impl Topology {
    /// The hosts that have `role`.
    pub fn with(&self, role: Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |h| h.roles.contains(&role))
    }
}

impl Host {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

impl Role {
    /// The name users write.
    pub fn name(self) -> &'static str {
        match self {
            Role::Lb => "lb",
            Role::Web => "web",
            Role::App => "app",
            Role::Db => "db",
            Role::Monitor => "monitor",
            Role::Etcd => "etcd",
        }
    }
}
