//! Configuration: the TOML schema users write ([`schema`]), the validated
//! model the code runs ([`model`]), and the loader that turns one into the
//! other with errors that name the file, line, column and key ([`load`]).
//!
//! Exposes [`load_file`], [`load_str`], [`Model`] and [`ConfigError`].

mod checks;
mod diagnose;
pub mod env;
#[cfg(test)]
mod fake_env;
pub mod load;
pub mod model;
pub mod path;
pub mod schema;
pub mod syntax;

pub use env::{CertFacts, CertFault, Env};
pub use load::{load_file, load_str, ConfigError};
pub use model::Model;
