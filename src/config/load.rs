//! The entry points: a config file or text becomes a validated [`Model`].
//!
//! The text is deserialized into [`super::schema`] (serde/toml errors come
//! with a byte span, made precise by [`super::diagnose`]), then
//! [`super::validate`] checks it section by section; every error is
//! rendered as `file:line:column: key: what is wrong`.

use std::path::{Path, PathBuf};

use super::env::{read_text, Env};
use super::model::Model;
use super::validate::Cx;
use super::{diagnose, schema, ConfigError};

/// Reads and validates a config file; files, names and certificates it
/// mentions are reached through `env`.
pub fn load_file(path: &Path, env: &dyn Env) -> Result<Model, ConfigError> {
    let text = read_text(env, path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut m = load_str(&text, &path.display().to_string(), &base, env)?;
    m.source = Some(path.to_path_buf());
    Ok(m)
}

/// Validates a config held in memory. `name` is used in messages; relative
/// paths in the config are resolved against `base` (made absolute first,
/// so that every path in the model and in messages is absolute).
pub fn load_str(text: &str, name: &str, base: &Path, env: &dyn Env) -> Result<Model, ConfigError> {
    let base = absolute_dir(base, env);
    let cx = Cx::new(text, name, &base, env);
    let file: schema::File = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let key = diagnose::key_at(text, span.start);
        let (key, mut message) = diagnose::explain(e.message().trim_end(), &key);
        if message.trim().is_empty() {
            message = diagnose::silent_error(text, span.start);
        }
        cx.err(span, &key, message)
    })?;
    cx.validate(file)
}

/// The config file's folder as an absolute path (symbolic links resolved
/// when the folder exists).
fn absolute_dir(base: &Path, env: &dyn Env) -> PathBuf {
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    env.canonicalize(base)
        .or_else(|_| std::path::absolute(base))
        .map_or_else(|_| base.to_path_buf(), |b| lexical_normal(&b))
}

/// `a/./b/../c` → `a/c`, without touching the file system.
pub(super) fn lexical_normal(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    out
}
