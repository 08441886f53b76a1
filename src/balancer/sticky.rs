//! Sticky cookies: `NAME=<server id>` keeps a client on one server.

use std::sync::Arc;

use http::HeaderValue;

use crate::fields::HeaderView;

use super::cookie;
use super::Backend;
use crate::hash::{hash64, SEED_STICKY};

#[derive(Debug)]
pub(super) struct Sticky {
    name: String,
    /// Per server: its id, and the `Set-Cookie` value naming it.
    ids: Vec<String>,
    set_cookies: Vec<HeaderValue>,
}

impl Sticky {
    /// None when `name` is not a valid cookie name.
    pub(super) fn new(name: String, servers: &[Arc<Backend>]) -> Option<Self> {
        if !super::is_valid_cookie_name(&name) {
            return None;
        }
        let ids: Vec<String> = servers.iter().map(|s| server_id(&s.name)).collect();
        let set_cookies = ids
            .iter()
            .map(|id| HeaderValue::try_from(format!("{name}={id}; Path=/; HttpOnly; SameSite=Lax")).ok())
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            name,
            ids,
            set_cookies,
        })
    }

    /// The index of the server named by the request's cookie, if any.
    pub(super) fn lookup(&self, headers: &dyn HeaderView) -> Option<usize> {
        let value = cookie::find(headers, &self.name)?;
        self.ids.iter().position(|id| id.as_bytes() == value)
    }

    /// The `Set-Cookie` value for server `i`.
    pub(super) fn set_cookie(&self, i: usize) -> Option<HeaderValue> {
        self.set_cookies.get(i).cloned()
    }
}

/// A server's stable cookie id: 16 hex digits hashed from its name.
pub(super) fn server_id(name: &str) -> String {
    format!("{:016x}", hash64(SEED_STICKY, name.as_bytes()))
}
