//! Metric names, in one place (Prometheus conventions: `rampart_` prefix,
//! `_total` for counters, base units).

pub const BACKEND_UP: &str = "rampart_backend_up";
pub const BACKEND_HEALTH_TRANSITIONS: &str = "rampart_backend_health_transitions";
pub const BACKEND_EJECTED: &str = "rampart_backend_ejected";
pub const BACKEND_EJECTIONS: &str = "rampart_backend_ejections";
pub const BACKEND_DRAINING: &str = "rampart_backend_draining";
pub const BACKEND_IN_FLIGHT: &str = "rampart_backend_requests_in_flight";
pub const BACKEND_WEIGHT: &str = "rampart_backend_weight";
pub const POOL_RETRIES: &str = "rampart_pool_retries";
pub const POOL_OVERLOADED: &str = "rampart_pool_overloaded_requests";
pub const POOL_EJECTIONS: &str = "rampart_pool_ejections";
pub const POOL_SERVERS_AVAILABLE: &str = "rampart_pool_servers_available";

pub const REQUESTS: &str = "rampart_requests";
pub const REQUEST_DURATION: &str = "rampart_request_duration_seconds";
pub const ROUTE_REQUESTS: &str = "rampart_route_requests";
pub const BACKEND_REQUESTS: &str = "rampart_backend_requests";
pub const BACKEND_RESPONSE_HEADER: &str = "rampart_backend_response_header_seconds";
pub const CONNECTIONS_ACTIVE: &str = "rampart_connections_active";
pub const BYTES_RECEIVED: &str = "rampart_received_bytes";
pub const BYTES_SENT: &str = "rampart_sent_bytes";
pub const TLS_HANDSHAKES: &str = "rampart_tls_handshakes";
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
