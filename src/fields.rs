//! Header fields as the request path reads and rewrites them, without
//! building an `http::HeaderMap` for heads rampart parsed itself.
//!
//! - [`HeaderView`]: what routing, firewall rules, hash keys, forwarding
//!   headers and the access log read (`get`, `each_value`, `contains`),
//!   implemented for a head kept as offsets in its read buffer
//!   ([`RawFields`]) and for an `http::HeaderMap` (HTTP/2, where hyper
//!   hands one over), and for [`Head`], which is either.
//! - [`Class`]: the fields rampart acts on, named once per field (while
//!   parsing, for a raw head), so that dropping a hop-by-hop field or
//!   finding `Host` is a bit test rather than a string comparison.
//! - [`Edits`]: a rewrite as a plan, applied when the head is written out
//!   (or turned into a map for hyper): the classes of fields to drop and a
//!   short list of fields to add. A head is never copied to be rewritten,
//!   so a retry sends the same head again.
//!
//! A leaf: it knows `http`'s types and nothing of rampart.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut, Range};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

/// What the request path reads of a head's fields. Names are given in
/// lower case; fields are matched whatever their case on the wire.
pub trait HeaderView: Sync {
    /// The value of the first field named `name`.
    fn get(&self, name: &str) -> Option<&[u8]>;
    /// Each value of the fields named `name`, in order, until `f` says
    /// false.
    fn each_value<'s>(&'s self, name: &str, f: &mut dyn FnMut(&'s [u8]) -> bool);
    /// Whether a field named `name` is present.
    fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

// === Spare lists ===

/// How many spare lists a worker keeps of each kind, and the longest it
/// keeps (a head with more fields is rare; its list is freed).
const SPARE_KEEP: usize = 256;
const SPARE_LEN: usize = 64;

/// The name and value offsets of a field in its head.
pub type Span = (Range<usize>, Range<usize>);

thread_local! {
    static SPARE_SPANS: RefCell<Vec<Vec<Span>>> = const { RefCell::new(Vec::new()) };
    static SPARE_FIELDS: RefCell<Vec<Vec<Field>>> = const { RefCell::new(Vec::new()) };
}

/// An empty list from `spare` (or a new one).
fn spare_take<T: 'static>(spare: &'static std::thread::LocalKey<RefCell<Vec<Vec<T>>>>) -> Vec<T> {
    spare.with(|s| s.borrow_mut().pop()).unwrap_or_default()
}

/// Keeps `v`, emptied, for the next head parsed on this worker.
fn spare_give<T: 'static>(spare: &'static std::thread::LocalKey<RefCell<Vec<Vec<T>>>>, mut v: Vec<T>) {
    if v.capacity() == 0 || v.capacity() > SPARE_LEN {
        return;
    }
    v.clear();
    // `try_with`: a list dropped while the thread ends is just freed.
    let _ = spare.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < SPARE_KEEP {
            s.push(v);
        }
    });
}

/// The fields' offsets of a head as parsed, in a list that goes back to
/// the worker's spare lists when dropped: parsing a head allocates
/// nothing once the worker has served a few.
#[derive(Debug, PartialEq, Eq)]
pub struct Spans(Vec<Span>);

impl Spans {
    pub fn take() -> Self {
        Spans(spare_take(&SPARE_SPANS))
    }
}

impl Default for Spans {
    fn default() -> Self {
        Spans::take()
    }
}

impl Clone for Spans {
    fn clone(&self) -> Self {
        let mut c = Spans::take();
        c.0.extend_from_slice(&self.0);
        c
    }
}

impl Deref for Spans {
    type Target = Vec<Span>;
    fn deref(&self) -> &Vec<Span> {
        &self.0
    }
}

impl DerefMut for Spans {
    fn deref_mut(&mut self) -> &mut Vec<Span> {
        &mut self.0
    }
}

impl Drop for Spans {
    fn drop(&mut self) {
        spare_give(&SPARE_SPANS, std::mem::take(&mut self.0));
    }
}

// === Classes ===

/// The fields rampart acts on (everything else is [`Class::Other`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Class {
    Other = 0,
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    ProxyConnection,
    Te,
    Trailer,
    Upgrade,
    Http2Settings,
    ProxyAuthorization,
    ProxyAuthenticate,
    Expect,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    Forwarded,
    XRealIp,
    XRequestId,
    ClientCertSubject,
    ClientCertSan,
    ClientCertSha256,
    /// The fields the message's `Connection` header names (hop-by-hop
    /// too): a field of any class can be one as well (see [`Field`]).
    Named,
    Cookie,
    UserAgent,
    Referer,
    Date,
    StrictTransportSecurity,
    SetCookie,
    AltSvc,
}

impl Class {
    /// This class as a bit of a [`Classes`] set.
    pub const fn bit(self) -> Classes {
        1 << self as u32
    }

    /// The class of a field name (any case).
    pub fn of(name: &[u8]) -> Class {
        // By length first: most names are ruled out without comparing.
        let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
        match name.len() {
            2 if is("te") => Class::Te,
            3 if is("dnt") => Class::Other,
            4 if is("host") => Class::Host,
            4 if is("date") => Class::Date,
            6 if is("expect") => Class::Expect,
            6 if is("cookie") => Class::Cookie,
            7 if is("trailer") => Class::Trailer,
            7 if is("upgrade") => Class::Upgrade,
            7 if is("referer") => Class::Referer,
            7 if is("alt-svc") => Class::AltSvc,
            9 if is("x-real-ip") => Class::XRealIp,
            9 if is("forwarded") => Class::Forwarded,
            10 if is("connection") => Class::Connection,
            10 if is("keep-alive") => Class::KeepAlive,
            10 if is("user-agent") => Class::UserAgent,
            10 if is("set-cookie") => Class::SetCookie,
            12 if is("x-request-id") => Class::XRequestId,
            14 if is("content-length") => Class::ContentLength,
            14 if is("http2-settings") => Class::Http2Settings,
            15 if is("x-forwarded-for") => Class::XForwardedFor,
            16 if is("x-forwarded-host") => Class::XForwardedHost,
            16 if is("proxy-connection") => Class::ProxyConnection,
            17 if is("transfer-encoding") => Class::TransferEncoding,
            17 if is("x-forwarded-proto") => Class::XForwardedProto,
            17 if is("x-client-cert-san") => Class::ClientCertSan,
            18 if is("proxy-authenticate") => Class::ProxyAuthenticate,
            19 if is("proxy-authorization") => Class::ProxyAuthorization,
            20 if is("x-client-cert-sha256") => Class::ClientCertSha256,
            21 if is("x-client-cert-subject") => Class::ClientCertSubject,
            25 if is("strict-transport-security") => Class::StrictTransportSecurity,
            _ => Class::Other,
        }
    }
}

/// A set of [`Class`]es, one bit each.
pub type Classes = u32;

/// The hop-by-hop fields a proxy never passes on (RFC 9110 §7.6.1), with
/// those a `Connection` header names; `Upgrade` is the caller's to keep
/// for an upgrade it allows.
pub const HOP_BY_HOP: Classes = Class::Connection.bit()
    | Class::KeepAlive.bit()
    | Class::ProxyConnection.bit()
    | Class::ProxyAuthenticate.bit()
    | Class::ProxyAuthorization.bit()
    | Class::Te.bit()
    | Class::Trailer.bit()
    | Class::Http2Settings.bit()
    | Class::TransferEncoding.bit()
    | Class::Named.bit();

// === A raw head ===

/// One field of a raw head: offsets of its name and value in the head's
/// bytes, its class, and whether the `Connection` field names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    name: (u32, u32),
    value: (u32, u32),
    pub class: Class,
    pub named: bool,
}

impl Field {
    /// Whether a rewrite dropping `drop` drops this field.
    fn dropped(&self, drop: Classes) -> bool {
        drop & self.class.bit() != 0 || (self.named && drop & Class::Named.bit() != 0)
    }
}

/// The fields of a head kept where it was read: one `Bytes` (the head,
/// shared with nothing else), and where each field sits in it.
#[derive(Debug, Clone, Default)]
pub struct RawFields {
    bytes: Bytes,
    fields: Vec<Field>,
    /// The classes present.
    present: Classes,
}

fn span(r: &Range<usize>) -> (u32, u32) {
    (
        u32::try_from(r.start).unwrap_or(u32::MAX),
        u32::try_from(r.end).unwrap_or(u32::MAX),
    )
}

impl RawFields {
    /// The fields at `ranges` (name, value) of `bytes`, classified; fields
    /// a `Connection` field names are marked [`Class::Named`].
    pub fn new(bytes: Bytes, ranges: &[(Range<usize>, Range<usize>)]) -> Self {
        let mut fields = spare_take(&SPARE_FIELDS);
        fields.reserve(ranges.len());
        let mut present = 0;
        for (n, v) in ranges {
            let class = bytes.get(n.clone()).map_or(Class::Other, Class::of);
            present |= class.bit();
            fields.push(Field {
                name: span(n),
                value: span(v),
                class,
                named: false,
            });
        }
        let mut raw = RawFields {
            bytes,
            fields,
            present,
        };
        if present & Class::Connection.bit() != 0 {
            raw.mark_named();
        }
        raw
    }

    /// Marks the fields the `Connection` fields name (other than
    /// `Connection` itself) as named.
    fn mark_named(&mut self) {
        let bytes = &self.bytes;
        let named: Vec<usize> = (0..self.fields.len())
            .filter(|&i| {
                let f = &self.fields[i];
                if f.class == Class::Connection {
                    return false;
                }
                let name = slice(bytes, f.name);
                self.fields
                    .iter()
                    .filter(|c| c.class == Class::Connection)
                    .any(|c| {
                        slice(bytes, c.value)
                            .split(|&b| b == b',')
                            .any(|t| t.trim_ascii().eq_ignore_ascii_case(name))
                    })
            })
            .collect();
        for i in named {
            self.fields[i].named = true;
            self.present |= Class::Named.bit();
        }
    }

    /// The head's bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The classes present.
    pub fn present(&self) -> Classes {
        self.present
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Each field: name, value and class ([`Class::Named`] for a field
    /// `Connection` names).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8], Class)> + '_ {
        self.fields.iter().map(|f| {
            let class = if f.named { Class::Named } else { f.class };
            (slice(&self.bytes, f.name), slice(&self.bytes, f.value), class)
        })
    }

    /// Whether a field of `class` is one the `Connection` field names.
    pub fn is_named(&self, class: Class) -> bool {
        self.present & Class::Named.bit() != 0 && self.fields.iter().any(|f| f.class == class && f.named)
    }

    /// The first value of `class` as a `HeaderValue` sharing the head's
    /// bytes.
    pub fn value_of(&self, class: Class) -> Option<HeaderValue> {
        if self.present & class.bit() == 0 {
            return None;
        }
        let f = self.fields.iter().find(|f| f.class == class)?;
        let (a, b) = (f.value.0 as usize, f.value.1 as usize);
        HeaderValue::from_maybe_shared(self.bytes.slice(a..b)).ok()
    }

    /// The fields as a map (for hyper), less the classes in `drop`; None
    /// when a name or value is one `http` refuses.
    pub fn to_map(&self, drop: Classes) -> Option<HeaderMap> {
        let mut map = HeaderMap::with_capacity(self.fields.len());
        for f in self.fields.iter().filter(|f| !f.dropped(drop)) {
            let name = HeaderName::from_bytes(slice(&self.bytes, f.name)).ok()?;
            let (a, b) = (f.value.0 as usize, f.value.1 as usize);
            let value = HeaderValue::from_maybe_shared(self.bytes.slice(a..b)).ok()?;
            map.append(name, value);
        }
        Some(map)
    }
}

fn slice(bytes: &Bytes, (a, b): (u32, u32)) -> &[u8] {
    bytes.get(a as usize..b as usize).unwrap_or_default()
}

impl Drop for RawFields {
    fn drop(&mut self) {
        spare_give(&SPARE_FIELDS, std::mem::take(&mut self.fields));
    }
}

impl HeaderView for RawFields {
    fn get(&self, name: &str) -> Option<&[u8]> {
        let class = Class::of(name.as_bytes());
        if class != Class::Other {
            if self.present & class.bit() == 0 {
                return None;
            }
            let f = self.fields.iter().find(|f| f.class == class)?;
            return Some(slice(&self.bytes, f.value));
        }
        self.fields
            .iter()
            .find(|f| slice(&self.bytes, f.name).eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| slice(&self.bytes, f.value))
    }

    fn each_value<'s>(&'s self, name: &str, f: &mut dyn FnMut(&'s [u8]) -> bool) {
        let class = Class::of(name.as_bytes());
        if class != Class::Other && self.present & class.bit() == 0 {
            return;
        }
        for field in &self.fields {
            let hit = if class == Class::Other {
                slice(&self.bytes, field.name).eq_ignore_ascii_case(name.as_bytes())
            } else {
                field.class == class
            };
            if hit && !f(slice(&self.bytes, field.value)) {
                return;
            }
        }
    }
}

impl HeaderView for HeaderMap {
    fn get(&self, name: &str) -> Option<&[u8]> {
        HeaderMap::get(self, name).map(HeaderValue::as_bytes)
    }

    fn each_value<'s>(&'s self, name: &str, f: &mut dyn FnMut(&'s [u8]) -> bool) {
        for v in self.get_all(name) {
            if !f(v.as_bytes()) {
                return;
            }
        }
    }

    fn contains(&self, name: &str) -> bool {
        self.contains_key(name)
    }
}

// === Either ===

/// A head's fields: parsed here and kept as offsets, or a map hyper made
/// (HTTP/2), or none (an answer rampart makes).
#[derive(Debug, Clone)]
pub enum Head {
    Raw(RawFields),
    Map(HeaderMap),
}

impl Default for Head {
    fn default() -> Self {
        Head::Map(HeaderMap::new())
    }
}

impl HeaderView for Head {
    fn get(&self, name: &str) -> Option<&[u8]> {
        match self {
            Head::Raw(r) => r.get(name),
            Head::Map(m) => HeaderView::get(m, name),
        }
    }

    fn each_value<'s>(&'s self, name: &str, f: &mut dyn FnMut(&'s [u8]) -> bool) {
        match self {
            Head::Raw(r) => r.each_value(name, f),
            Head::Map(m) => m.each_value(name, f),
        }
    }

    fn contains(&self, name: &str) -> bool {
        match self {
            Head::Raw(r) => r.contains(name),
            Head::Map(m) => m.contains_key(name),
        }
    }
}

impl Head {
    /// Every field as (name, value), in order (what a WAF reads whole).
    pub fn pairs(&self) -> Vec<(&[u8], &[u8])> {
        match self {
            Head::Raw(r) => r
                .fields
                .iter()
                .map(|f| (slice(&r.bytes, f.name), slice(&r.bytes, f.value)))
                .collect(),
            Head::Map(m) => m
                .iter()
                .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()))
                .collect(),
        }
    }

    /// The first value of `class` as a `HeaderValue` (sharing the head's
    /// bytes when raw).
    pub fn value_of(&self, class: Class, name: &str) -> Option<HeaderValue> {
        match self {
            Head::Raw(r) => r.value_of(class),
            Head::Map(m) => m.get(name).cloned(),
        }
    }

    /// Each field not in `drop`, as it is to be written: name and value.
    pub fn kept(&self, drop: Classes) -> Kept<'_> {
        match self {
            Head::Raw(r) => Kept::Raw(r.fields.iter(), &r.bytes, drop),
            Head::Map(m) => Kept::Map(m.iter(), drop),
        }
    }

    /// The fields less `drop`, plus `add`, as a map (for hyper); None when
    /// a raw field is one `http` refuses.
    pub fn to_map(&self, drop: Classes, add: &Added) -> Option<HeaderMap> {
        let mut map = match self {
            Head::Raw(r) => r.to_map(drop)?,
            Head::Map(m) => {
                let mut m = m.clone();
                if drop != 0 {
                    let gone: Vec<HeaderName> = m
                        .keys()
                        .filter(|k| drop & Class::of(k.as_str().as_bytes()).bit() != 0)
                        .cloned()
                        .collect();
                    for k in gone {
                        m.remove(k);
                    }
                }
                m
            }
        };
        for (name, value) in add.iter() {
            map.append(HeaderName::from_static(name), value.clone());
        }
        Some(map)
    }
}

/// See [`Head::kept`].
#[derive(Debug)]
pub enum Kept<'a> {
    Raw(std::slice::Iter<'a, Field>, &'a Bytes, Classes),
    Map(http::header::Iter<'a, HeaderValue>, Classes),
}

impl<'a> Iterator for Kept<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Kept::Raw(it, bytes, drop) => it
                .find(|f| !f.dropped(*drop))
                .map(|f| (slice(bytes, f.name), slice(bytes, f.value))),
            Kept::Map(it, drop) => it
                .find(|(k, _)| *drop == 0 || *drop & Class::of(k.as_str().as_bytes()).bit() == 0)
                .map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes())),
        }
    }
}

// === Edits ===

/// Most fields a rewrite adds without allocating.
const INLINE: usize = 8;

/// Fields to add: rampart's own names, values shared or static.
#[derive(Debug, Clone, Default)]
pub struct Added {
    inline: [Option<(&'static str, HeaderValue)>; INLINE],
    len: usize,
    more: Vec<(&'static str, HeaderValue)>,
}

impl Added {
    /// Adds a field (`name` in lower case).
    pub fn push(&mut self, name: &'static str, value: HeaderValue) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = Some((name, value)),
            None => self.more.push((name, value)),
        }
        self.len += 1;
    }

    /// Removes the fields named `name` added so far.
    pub fn remove(&mut self, name: &str) {
        let all: Vec<(&'static str, HeaderValue)> =
            self.iter().filter(|(n, _)| *n != name).cloned().collect();
        *self = Added::default();
        for (n, v) in all {
            self.push(n, v);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &(&'static str, HeaderValue)> {
        self.inline.iter().flatten().chain(self.more.iter())
    }

    /// Each as `(name, value)` bytes.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()))
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A rewrite of a head: the classes of fields to drop, and fields to add.
#[derive(Debug, Clone, Default)]
pub struct Edits {
    pub drop: Classes,
    pub add: Added,
}

impl Edits {
    /// Drops the fields of `class` and adds `name: value` in their place.
    pub fn set(&mut self, class: Class, name: &'static str, value: HeaderValue) {
        self.drop |= class.bit();
        self.add.push(name, value);
    }
}

/// A head seen with its edits applied (what the backend will get): kept
/// fields first, then the added ones.
#[derive(Debug, Clone, Copy)]
pub struct Edited<'a> {
    pub head: &'a Head,
    pub edits: &'a Edits,
}

impl Edited<'_> {
    fn dropped(&self, name: &str) -> bool {
        self.edits.drop != 0 && self.edits.drop & Class::of(name.as_bytes()).bit() != 0
    }
}

impl HeaderView for Edited<'_> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        if !self.dropped(name) {
            if let Some(v) = self.head.get(name) {
                return Some(v);
            }
        }
        self.edits
            .add
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_bytes())
    }

    fn each_value<'s>(&'s self, name: &str, f: &mut dyn FnMut(&'s [u8]) -> bool) {
        let mut going = true;
        if !self.dropped(name) {
            self.head.each_value(name, &mut |v| {
                going = f(v);
                going
            });
        }
        for (n, v) in self.edits.add.iter() {
            if !going {
                return;
            }
            if *n == name {
                going = f(v.as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests;
