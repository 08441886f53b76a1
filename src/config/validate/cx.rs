//! What every section's validation shares: [`Cx`] turns a value's span into
//! a located error (`file:line:column: key: message`), and reads the kinds
//! of values many sections have: durations, sizes, paths, addresses, CIDR
//! lists, and files through the [`Env`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use toml::Spanned;

use crate::config::env::{self, Env};
use crate::config::error::{ConfigError, Located};
use crate::config::load::lexical_normal;
use crate::config::syntax::parse_net;
use crate::units::{parse_duration, parse_size};

/// A validation step's result.
pub(crate) type R<T> = Result<T, ConfigError>;

/// The text being validated, its name in messages, the folder relative
/// paths start from, and the outside world.
pub(crate) struct Cx<'a> {
    text: &'a str,
    name: &'a str,
    base: &'a Path,
    pub(super) env: &'a dyn Env,
}

impl<'a> Cx<'a> {
    pub(crate) fn new(text: &'a str, name: &'a str, base: &'a Path, env: &'a dyn Env) -> Self {
        Cx {
            text,
            name,
            base,
            env,
        }
    }

    /// An error at the byte span `span` of the text.
    pub(crate) fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
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

    /// An error at the value `v`.
    pub(super) fn at<T>(&self, v: &Spanned<T>, key: &str, message: impl Into<String>) -> ConfigError {
        self.err(v.span(), key, message)
    }

    /// An error at an optional value; at the start of the file when it is
    /// absent (then a default is in question).
    pub(super) fn at_opt<T>(
        &self,
        v: &Option<Spanned<T>>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        self.err(v.as_ref().map_or(0..0, |x| x.span()), key, message)
    }

    /// A path written in the config, resolved against the config file's
    /// folder, with `.` and `..` taken out.
    pub(super) fn path(&self, p: &str) -> PathBuf {
        lexical_normal(&self.base.join(p))
    }

    /// A secret written inline (`{prefix}{name}`) or as the first line of a
    /// file (`{prefix}{name}_file`), not both. Tokens are trimmed;
    /// passwords (`trim = false`) are taken as they are.
    pub(super) fn secret(
        &self,
        inline: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        prefix: &str,
        name: &str,
        trim: bool,
    ) -> R<Option<String>> {
        let cut = |s: &str| if trim { s.trim() } else { s }.to_string();
        match (inline, file) {
            (Some(_), Some(f)) => Err(self.at(
                f,
                &format!("{prefix}{name}_file"),
                format!("set either `{name}` or `{name}_file`, not both"),
            )),
            (Some(v), None) => Ok(Some(cut(v.get_ref()))),
            (None, Some(f)) => {
                let path = self.path(f.get_ref());
                let text = self.read_text(&path, f, &format!("{prefix}{name}_file"))?;
                Ok(Some(cut(text.lines().next().unwrap_or(""))))
            }
            (None, None) => Ok(None),
        }
    }

    /// A file's text, for a key naming it: `cannot read PATH: why` at `v`.
    pub(super) fn read_text(&self, path: &Path, v: &Spanned<String>, key: &str) -> R<String> {
        env::read_text(self.env, path)
            .map_err(|e| self.at(v, key, format!("cannot read {}: {e}", path.display())))
    }

    /// A duration such as `"5s"`; `default` when absent.
    pub(super) fn duration(&self, v: &Option<Spanned<String>>, key: &str, default: Duration) -> R<Duration> {
        match v {
            None => Ok(default),
            Some(s) => parse_duration(s.get_ref()).map_err(|m| self.at(s, key, m)),
        }
    }

    /// A duration that must not be zero.
    pub(super) fn nonzero_duration(
        &self,
        v: &Option<Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> R<Duration> {
        match self.duration(v, key, default)? {
            d if d.is_zero() => Err(self.at_opt(v, key, "must be more than 0")),
            d => Ok(d),
        }
    }

    /// A size such as `"64KiB"`, in bytes; None when absent.
    pub(super) fn size(&self, v: &Option<Spanned<String>>, key: &str) -> R<Option<u64>> {
        match v {
            None => Ok(None),
            Some(s) => parse_size(s.get_ref()).map(Some).map_err(|e| self.at(s, key, e)),
        }
    }

    /// `IP:PORT`, or `HOST:PORT` resolved (the first address).
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

    /// Names that must each be one of `known` (listener names).
    pub(super) fn known_names(
        &self,
        list: &Spanned<Vec<String>>,
        key: &str,
        known: &[String],
    ) -> R<Vec<String>> {
        for n in list.get_ref() {
            if !known.contains(n) {
                return Err(self.at(list, key, format!("no listener is named `{n}`")));
            }
        }
        Ok(list.get_ref().clone())
    }

    /// A list of CIDR blocks (or addresses), each as written.
    pub(super) fn nets(&self, list: &Spanned<Vec<String>>, key: &str) -> R<Vec<IpNet>> {
        list.get_ref()
            .iter()
            .map(|s| parse_net(s).map_err(|e| self.at(list, key, e)))
            .collect()
    }

    /// A list of single IP addresses.
    pub(super) fn ips(&self, list: &Spanned<Vec<String>>, key: &str) -> R<Vec<std::net::IpAddr>> {
        list.get_ref()
            .iter()
            .map(|a| {
                a.parse()
                    .map_err(|_| self.at(list, key, format!("`{a}` is not an IP address")))
            })
            .collect()
    }
}

/// What the user wrote for a key whose default is a name they could have
/// written (`"round_robin"`): validation then reads both the same way.
pub(super) fn written<'v>(v: &'v Option<Spanned<String>>, default: &'v str) -> &'v str {
    v.as_ref().map_or(default, |s| s.get_ref().as_str())
}

/// Addresses taken so far by listeners and origins; port 0 never clashes.
#[derive(Default)]
pub(super) struct Addresses(HashMap<SocketAddr, String>);

impl Addresses {
    /// Takes `a` for `who` (`listener `x``), or says who has it.
    pub(super) fn claim(
        &mut self,
        cx: &Cx<'_>,
        a: SocketAddr,
        v: &Spanned<String>,
        key: &str,
        who: String,
    ) -> R<()> {
        if a.port() != 0 {
            if let Some(prev) = self.0.insert(a, who) {
                return Err(cx.at(
                    v,
                    key,
                    format!("address {a} is already used by {prev}: give each listener its own address"),
                ));
            }
        }
        Ok(())
    }
}
