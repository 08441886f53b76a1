//! `[timeouts]` and `[limits]`: how long each step may take, and how large
//! and slow a request may be.

use toml::Spanned;

use super::{Cx, R};
use crate::config::{model, schema};

impl Cx<'_> {
    pub(super) fn timeouts(&self, t: &schema::Timeouts) -> R<model::Timeouts> {
        let d = model::Timeouts::default();
        Ok(model::Timeouts {
            connect: self.duration(&t.connect, "timeouts.connect", d.connect)?,
            response_header: self.duration(
                &t.response_header,
                "timeouts.response_header",
                d.response_header,
            )?,
            client_idle: self.duration(&t.client_idle, "timeouts.client_idle", d.client_idle)?,
            request_header: self.duration(&t.request_header, "timeouts.request_header", d.request_header)?,
            backend_idle: self.duration(&t.backend_idle, "timeouts.backend_idle", d.backend_idle)?,
            tcp_idle: self.duration(&t.tcp_idle, "timeouts.tcp_idle", d.tcp_idle)?,
            request: self.duration(&t.request, "timeouts.request", d.request)?,
            request_body_idle: self.nonzero_duration(
                &t.request_body_idle,
                "timeouts.request_body_idle",
                d.request_body_idle,
            )?,
            drain: self.duration(&t.drain, "timeouts.drain", d.drain)?,
            shutdown_delay: self.duration(&t.shutdown_delay, "timeouts.shutdown_delay", d.shutdown_delay)?,
        })
    }

    pub(super) fn limits(&self, l: &schema::Limits) -> R<model::Limits> {
        let d = model::Limits::default();
        let max_header_bytes = self
            .size(&l.max_header_bytes, "limits.max_header_bytes")?
            .map_or(d.max_header_bytes, |v| v as usize);
        if max_header_bytes < 8192 {
            return Err(self.at_opt(
                &l.max_header_bytes,
                "limits.max_header_bytes",
                "at least 8KiB (HTTP/1.1's read buffer cannot be smaller)",
            ));
        }
        let count = |v: &Option<Spanned<usize>>, key: &str, default: usize| -> R<usize> {
            match v {
                Some(n) if *n.get_ref() == 0 => Err(self.at(n, key, "must be at least 1")),
                Some(n) => Ok(*n.get_ref()),
                None => Ok(default),
            }
        };
        Ok(model::Limits {
            max_header_bytes,
            max_headers: count(&l.max_headers, "limits.max_headers", d.max_headers)?,
            max_uri_length: count(&l.max_uri_length, "limits.max_uri_length", d.max_uri_length)?,
            max_body: self.size(&l.max_body, "limits.max_body")?,
            min_body_rate: self
                .size(&l.min_body_rate, "limits.min_body_rate")?
                .unwrap_or(d.min_body_rate),
            body_grace: self.duration(&l.body_grace, "limits.body_grace", d.body_grace)?,
            http2_max_concurrent_streams: l
                .http2_max_concurrent_streams
                .unwrap_or(d.http2_max_concurrent_streams)
                .max(1),
            http2_max_pending_resets: l.http2_max_pending_resets.unwrap_or(d.http2_max_pending_resets),
            quic_retry_above: l.quic_retry_above.unwrap_or(d.quic_retry_above),
            quic_retry_always: l.quic_retry_always.unwrap_or(d.quic_retry_always),
        })
    }
}
