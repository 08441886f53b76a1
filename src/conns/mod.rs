//! Connections to backend servers that outlive one request: the stream
//! ([`BackendStream`], plain TCP or TLS over it, whose readiness tells an
//! early answer or a closed peer without reading) and each server's idle
//! HTTP/1.1 connections ([`IdleConns`]), shared by every worker thread and
//! bounded per server for the whole process, with the counts an operator
//! reads first (opened, reused, closed, idle).
//!
//! A leaf: the balancer's servers own their idle connections; the proxy
//! takes them out and gives them back.

mod idle;
mod stream;

pub use idle::{Counts, IdleConns, Lease, Settings};
pub use stream::BackendStream;
