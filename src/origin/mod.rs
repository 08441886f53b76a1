//! The built-in web-server role: serving a directory, or the demo site
//! embedded in the binary, over HTTP/1.1 the way nginx's static file
//! handling would.
//!
//! This module owns everything between a request that reached an origin
//! and its response: path decoding and confinement to the root (no `..`,
//! encoded separators, NUL or non-UTF-8 names; symlinks may not lead out
//! of the root), index files (`index.html`; no directory listings),
//! content types, validators (`ETag`, `Last-Modified`), conditional
//! requests (`If-Match`, `If-Unmodified-Since`, `If-None-Match`,
//! `If-Modified-Since`), single byte ranges with `If-Range`, and streaming
//! large files from disk.
//!
//! It exposes [`Site`] (build one with [`Site::dir`] or [`Site::demo`],
//! answer with [`Site::serve`]) and [`FileStream`], the file body carried
//! by [`Body::Stream`], and [`serve_connection`], which serves one accepted
//! connection (listening is the caller's).
//!
//! Choices worth knowing:
//! - Only GET and HEAD; anything else is 405 with `Allow: GET, HEAD`.
//! - A path that cannot name a file below the root is 404; a path whose
//!   file resolves outside the root (through a symlink) is 403.
//! - A directory asked for without its trailing slash is redirected (301)
//!   to the slash form.
//! - A request for several ranges, or an invalid `Range`, gets the whole
//!   file (200). `If-Range` is honoured: a strong ETag match or an exact
//!   `Last-Modified` date lets the range apply, anything else gets 200.
//!   `Range` is honoured on GET only (RFC 9110): HEAD always answers as
//!   the 200 would, with the whole length in `Content-Length`.
//! - ETags are strong: size and modification time (nanoseconds) for
//!   files on disk, a hash of the content for the demo site.
//! - Up to 64 KiB of body is read into memory; more streams from disk.

mod cond;
mod demo;
mod file;
mod path;
mod range;
mod serve;
mod site;
#[cfg(test)]
mod tests;

pub use file::FileStream;
pub use serve::serve_connection;
pub use site::Site;

/// The body of every answer an origin gives.
pub type Body = crate::body::Body<FileStream>;
