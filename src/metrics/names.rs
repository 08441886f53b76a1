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
