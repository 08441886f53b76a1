//! Path normalisation for the request path. The normal form is defined in
//! [`crate::config::path`], where each rule's `path_prefix` is normalised
//! at load with the same function every request's path goes through.

pub use crate::config::path::{normalize, normalize_changed, PathError};
