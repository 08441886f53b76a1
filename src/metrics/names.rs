//! Metric names, in one place (Prometheus conventions: `rampart_` prefix,
//! `_total` for counters, base units).

pub const BACKEND_UP: &str = "rampart_backend_up";
pub const BACKEND_HEALTH_TRANSITIONS: &str = "rampart_backend_health_transitions";
pub const BACKEND_EJECTED: &str = "rampart_backend_ejected";
pub const BACKEND_EJECTIONS: &str = "rampart_backend_ejections";
pub const BACKEND_DRAINING: &str = "rampart_backend_draining";
pub const BACKEND_IN_FLIGHT: &str = "rampart_backend_requests_in_flight";
pub const BACKEND_WEIGHT: &str = "rampart_backend_weight";
pub const BACKEND_CONNS_OPENED: &str = "rampart_backend_connections_opened";
pub const BACKEND_CONNS_REUSED: &str = "rampart_backend_connections_reused";
pub const BACKEND_CONNS_CLOSED: &str = "rampart_backend_connections_closed";
pub const BACKEND_CONNS_OPEN: &str = "rampart_backend_connections_open";
pub const BACKEND_CONNS_IDLE: &str = "rampart_backend_connections_idle";
pub const POOL_RETRIES: &str = "rampart_pool_retries";
pub const POOL_OVERLOADED: &str = "rampart_pool_overloaded_requests";
pub const POOL_EJECTIONS: &str = "rampart_pool_ejections";
pub const POOL_SERVERS_AVAILABLE: &str = "rampart_pool_servers_available";

pub const REQUESTS: &str = "rampart_requests";
pub const CLIENT_ABORTED: &str = "rampart_client_aborted_requests";
pub const REQUESTS_REFUSED: &str = "rampart_requests_refused";
pub const FIREWALL_EVENTS_DROPPED: &str = "rampart_firewall_events_dropped";
pub const BACKEND_STALE_RETRIES: &str = "rampart_backend_stale_connection_retries";
pub const REQUEST_DURATION: &str = "rampart_request_duration_seconds";
pub const ROUTE_REQUESTS: &str = "rampart_route_requests";
pub const BACKEND_REQUESTS: &str = "rampart_backend_requests";
pub const BACKEND_RESPONSE_HEADER: &str = "rampart_backend_response_header_seconds";
pub const CONNECTIONS_ACTIVE: &str = "rampart_connections_active";
pub const BYTES_RECEIVED: &str = "rampart_received_bytes";
pub const BYTES_SENT: &str = "rampart_sent_bytes";
pub const TLS_HANDSHAKES: &str = "rampart_tls_handshakes";
pub const CONNECTIONS_BY_PROTOCOL: &str = "rampart_connections_by_protocol";
pub const QUIC_HANDSHAKES: &str = "rampart_quic_handshakes_started";
pub const QUIC_RETRIES: &str = "rampart_quic_retries_sent";
pub const TLS_HANDSHAKE_FAILURES: &str = "rampart_tls_handshake_failures";
pub const BACKEND_TLS_FAILURES: &str = "rampart_backend_tls_failures";
pub const ACCESS_LOG_LINES: &str = "rampart_access_log_lines";
pub const ACCESS_LOG_DROPPED: &str = "rampart_access_log_dropped_lines";
pub const FIREWALL_DECISIONS: &str = "rampart_firewall_decisions";
pub const FIREWALL_BANS_ACTIVE: &str = "rampart_firewall_bans_active";
pub const FIREWALL_BANS: &str = "rampart_firewall_bans";
pub const FIREWALL_BANNED_REFUSED: &str = "rampart_firewall_banned_connections_refused";
pub const FIREWALL_CONNECTIONS_REFUSED: &str = "rampart_firewall_connections_refused";
pub const CERTIFICATE_EXPIRY: &str = "rampart_certificate_expiry_seconds";

pub const TCP_SESSIONS_ACTIVE: &str = "rampart_tcp_sessions_active";
pub const TCP_SESSIONS: &str = "rampart_tcp_sessions";
pub const TCP_BYTES: &str = "rampart_tcp_bytes";
pub const TCP_CONNECT_FAILURES: &str = "rampart_tcp_connect_failures";
pub const TCP_SESSION_DURATION: &str = "rampart_tcp_session_duration_seconds";
pub const TCP_REFUSED: &str = "rampart_tcp_refused_connections";
pub const BACKEND_TCP_SESSIONS_ACTIVE: &str = "rampart_backend_tcp_sessions_active";
pub const BACKEND_TCP_SESSIONS: &str = "rampart_backend_tcp_sessions";
pub const BACKEND_TCP_BYTES: &str = "rampart_backend_tcp_bytes";
pub const BACKEND_TCP_CONNECT_FAILURES: &str = "rampart_backend_tcp_connect_failures";
pub const BACKEND_TCP_SESSION_DURATION: &str = "rampart_backend_tcp_session_duration_seconds";
pub const DB_WRITER_AVAILABLE: &str = "rampart_db_writer_available";
pub const DB_ROLE: &str = "rampart_db_role";
pub const DB_REPLICATION_LAG: &str = "rampart_db_replication_lag_seconds";
pub const BUILD_INFO: &str = "rampart_build_info";
pub const START_TIME: &str = "rampart_start_time_seconds";
pub const CLUSTER_UP: &str = "rampart_cluster_up";
pub const CLUSTER_DECISIONS: &str = "rampart_cluster_decisions";
pub const CLUSTER_FALLBACKS: &str = "rampart_cluster_fallbacks";
pub const FLEET_REVISION: &str = "rampart_fleet_revision";
pub const FLEET_UP: &str = "rampart_fleet_up";
pub const FLEET_APPLIES: &str = "rampart_fleet_applies";
pub const FLEET_REFUSALS: &str = "rampart_fleet_refusals";
pub const WAF_BLOCKED: &str = "rampart_waf_blocked";

#[cfg(test)]
mod tests {
    /// Every metric named here is documented in `docs/metrics.md`.
    #[test]
    fn every_metric_is_documented() {
        let docs = include_str!("../../docs/metrics.md");
        let names: Vec<&str> = include_str!("names.rs")
            .lines()
            .filter(|l| l.starts_with("pub const"))
            .filter_map(|l| l.split('"').nth(1))
            .collect();
        assert!(names.len() > 40);
        let missing: Vec<&str> = names
            .into_iter()
            .filter(|n| {
                ["`", "_total`", "{"]
                    .iter()
                    .all(|end| !docs.contains(&format!("`{n}{end}")))
            })
            .collect();
        assert!(missing.is_empty(), "not in docs/metrics.md: {missing:?}");
    }
}
