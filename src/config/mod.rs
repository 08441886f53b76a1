//! Configuration: the TOML schema users write ([`schema`]), the validated
//! model the code runs ([`model`]), and the loader that turns one into the
//! other ([`load_file`], [`load_str`]) with errors that name the file,
//! line, column and key ([`ConfigError`]).
//!
//! Loading reaches the outside world (files, names, certificates) only
//! through an [`Env`]; validation is split by section under `validate/`,
//! each with the shared context that locates errors. [`syntax`] and
//! [`path`] are the small grammars the running code shares with the
//! loader.
//!
//! Exposes [`load_file`], [`load_str`], [`Env`], [`Model`] and
//! [`ConfigError`].

pub mod defaults;
mod diagnose;
#[cfg(test)]
mod docs_test;
pub mod env;
mod error;
#[cfg(test)]
pub(crate) mod fake_env;
mod load;
pub mod model;
pub mod path;
pub mod schema;
pub mod syntax;
mod validate;

pub use env::{CertFacts, CertFault, Env};
pub use error::{ConfigError, Located};
pub use load::{load_file, load_str};
pub use model::Model;
pub use validate::crl_ders;
