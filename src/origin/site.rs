//! [`Site`]: what one origin serves, and how it answers a request.

use std::io::{self, SeekFrom};
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::cond::{http_date, unix_secs, Validators, Verdict};
use super::demo::Demo;
use super::file::{FileStream, CHUNK};
use super::path::ReqPath;
use super::range::{self, Ranged};
use super::Body;

/// What one origin serves: a directory on disk or the embedded demo site.
#[derive(Debug)]
pub struct Site {
    name: String,
    content: Content,
}

#[derive(Debug)]
enum Content {
    /// The canonical root directory.
    Dir(PathBuf),
    Demo(Demo),
}

/// The representation a request resolved to.
struct Entity {
    content_type: HeaderValue,
    validators: Validators,
    cache_control: Option<&'static str>,
    len: u64,
    source: Source,
}

enum Source {
    Memory(Bytes),
    Disk(File),
}

/// Why a request resolved to no entity.
enum Miss {
    Status(StatusCode),
    /// 301 to this location (a directory asked for without its slash).
    Redirect(String),
}

impl Site {
    /// Serves files below `root` (canonicalised once here; error if not a
    /// directory).
    pub fn dir(root: PathBuf) -> io::Result<Site> {
        let root = std::fs::canonicalize(&root)?;
        if !std::fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(Site {
            name: root.display().to_string(),
            content: Content::Dir(root),
        })
    }

    /// The demo site embedded in the binary, every page naming
    /// `server_name`.
    pub fn demo(server_name: &str) -> Site {
        Site {
            name: server_name.to_owned(),
            content: Content::Demo(Demo::new(server_name)),
        }
    }

    /// The server name (demo) or the root directory (dir).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Answers one request. Never panics on any input.
    pub async fn serve<B>(&self, req: &Request<B>) -> Response<Body> {
        let head = match *req.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => {
                let mut res = plain(StatusCode::METHOD_NOT_ALLOWED, false);
                res.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                return res;
            }
        };
        let Some(path) = ReqPath::parse(req.uri().path()) else {
            return plain(StatusCode::NOT_FOUND, head);
        };
        let found = match &self.content {
            Content::Demo(demo) => demo
                .get(&path)
                .map(|a| Entity {
                    content_type: HeaderValue::from_static(a.content_type),
                    validators: a.validators.clone(),
                    cache_control: a.cache_control,
                    len: a.body.len() as u64,
                    source: Source::Memory(a.body.clone()),
                })
                .ok_or(Miss::Status(StatusCode::NOT_FOUND)),
            Content::Dir(root) => open(root, &path).await,
        };
        match found {
            Ok(entity) => respond(req.headers(), head, entity).await,
            Err(Miss::Status(status)) => plain(status, head),
            Err(Miss::Redirect(mut location)) => {
                if let Some(q) = req.uri().query() {
                    location.push('?');
                    location.push_str(q);
                }
                let mut res = plain(StatusCode::MOVED_PERMANENTLY, head);
                match HeaderValue::from_str(&location) {
                    Ok(v) => res.headers_mut().insert(header::LOCATION, v),
                    Err(_) => return plain(StatusCode::NOT_FOUND, head),
                };
                res
            }
        }
    }
}

/// Finds and opens the file `path` names below `root`.
async fn open(root: &Path, path: &ReqPath) -> Result<Entity, Miss> {
    let mut target = root.to_path_buf();
    for seg in &path.segments {
        // `ReqPath` already guarantees this; checked again because a
        // segment that is not one plain name could replace or leave the
        // root when joined.
        let mut parts = Path::new(seg).components();
        match (parts.next(), parts.next()) {
            (Some(Component::Normal(_)), None) => target.push(seg),
            _ => return Err(Miss::Status(StatusCode::NOT_FOUND)),
        }
    }
    let mut real = confine(root, &target).await?;
    let meta = tokio::fs::metadata(&real).await.map_err(io_miss)?;
    if meta.is_dir() {
        if !path.trailing_slash {
            return Err(Miss::Redirect(path.dir_location()));
        }
        target.push("index.html");
        real = confine(root, &real.join("index.html")).await?;
    } else if path.trailing_slash {
        return Err(Miss::Status(StatusCode::NOT_FOUND));
    }
    // Refuse anything but a regular file before opening it: opening a
    // FIFO would block.
    if !tokio::fs::metadata(&real).await.map_err(io_miss)?.is_file() {
        return Err(Miss::Status(StatusCode::NOT_FOUND));
    }
    let file = File::open(&real).await.map_err(io_miss)?;
    let meta = file.metadata().await.map_err(io_miss)?;
    if !meta.is_file() {
        return Err(Miss::Status(StatusCode::NOT_FOUND));
    }
    let modified = meta.modified().ok();
    let nanos = modified
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(Entity {
        content_type: content_type(&target),
        validators: Validators {
            etag: format!("{:x}-{:x}", meta.len(), nanos),
            modified: modified.and_then(unix_secs),
        },
        cache_control: None,
        len: meta.len(),
        source: Source::Disk(file),
    })
}

/// Canonicalises `path` and requires the result to lie below `root`, so
/// a symlink that leads out of the root is refused.
async fn confine(root: &Path, path: &Path) -> Result<PathBuf, Miss> {
    let real = tokio::fs::canonicalize(path).await.map_err(io_miss)?;
    if real.starts_with(root) {
        Ok(real)
    } else {
        tracing::debug!(path = %path.display(), "refused: resolves outside the root");
        Err(Miss::Status(StatusCode::FORBIDDEN))
    }
}

fn io_miss(e: io::Error) -> Miss {
    Miss::Status(match e.kind() {
        io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        io::ErrorKind::NotFound => StatusCode::NOT_FOUND,
        _ => {
            tracing::debug!(error = %e, "file lookup failed");
            StatusCode::NOT_FOUND
        }
    })
}

/// The `Content-Type` for a file name; text types are declared UTF-8.
fn content_type(path: &Path) -> HeaderValue {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let essence = mime.essence_str();
    let texty = mime.type_() == mime_guess::mime::TEXT
        || matches!(
            essence,
            "application/javascript" | "application/json" | "application/xml" | "image/svg+xml"
        );
    let value = if texty && mime.get_param(mime_guess::mime::CHARSET).is_none() {
        format!("{essence}; charset=utf-8")
    } else {
        mime.to_string()
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// Answers with `entity`, after the conditional headers and `Range`.
async fn respond(headers: &HeaderMap, head: bool, entity: Entity) -> Response<Body> {
    let mut res = Response::new(Body::Empty);
    let h = res.headers_mut();
    if let Some(v) = entity.validators.etag_header() {
        h.insert(header::ETAG, v);
    }
    if let Some(v) = entity.validators.modified.and_then(http_date) {
        h.insert(header::LAST_MODIFIED, v);
    }
    if let Some(cc) = entity.cache_control {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cc));
    }
    match entity.validators.evaluate(headers) {
        Verdict::Proceed => {}
        Verdict::NotModified => {
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            return res;
        }
        Verdict::Failed => return plain(StatusCode::PRECONDITION_FAILED, head),
    }
    // Range is defined for GET only; an If-Range that no longer matches
    // means the whole (changed) representation is sent instead.
    let ranged = if head || !entity.validators.if_range_allows(headers) {
        Ranged::Full
    } else {
        range::requested(headers, entity.len)
    };
    let (start, len) = match ranged {
        Ranged::Full => (0, entity.len),
        Ranged::Part { start, len } => (start, len),
        Ranged::Unsatisfiable => {
            let mut res = plain(StatusCode::RANGE_NOT_SATISFIABLE, head);
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", entity.len)) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return res;
        }
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, entity.content_type);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ranged::Part { .. } = ranged {
        *res.status_mut() = StatusCode::PARTIAL_CONTENT;
        let range = format!("bytes {}-{}/{}", start, start + len - 1, entity.len);
        if let Ok(v) = HeaderValue::from_str(&range) {
            res.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    if head {
        return res;
    }
    match load(entity.source, start, len).await {
        Ok(body) => {
            *res.body_mut() = body;
            res
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading a file to serve failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, false)
        }
    }
}

/// The body for `len` bytes from `start`: in memory up to [`CHUNK`]
/// bytes, streamed beyond.
async fn load(source: Source, start: u64, len: u64) -> io::Result<Body> {
    let out_of_range = || io::Error::new(io::ErrorKind::InvalidInput, "range outside the body");
    match source {
        Source::Memory(b) => {
            let start = usize::try_from(start).map_err(|_| out_of_range())?;
            let end = usize::try_from(len)
                .ok()
                .and_then(|len| start.checked_add(len))
                .filter(|&end| end <= b.len())
                .ok_or_else(out_of_range)?;
            Ok(Body::full(b.slice(start..end)))
        }
        Source::Disk(mut file) => match usize::try_from(len) {
            Ok(small) if small <= CHUNK => {
                if start > 0 {
                    file.seek(SeekFrom::Start(start)).await?;
                }
                let mut buf = vec![0; small];
                file.read_exact(&mut buf).await?;
                Ok(Body::full(buf))
            }
            _ => Ok(Body::Stream(FileStream::open(file, start, len).await?)),
        },
    }
}

/// A short plain-text answer (`404 Not Found`), without body for HEAD.
fn plain(status: StatusCode, head: bool) -> Response<Body> {
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut res = Response::new(Body::Empty);
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(text.len()));
    if !head {
        *res.body_mut() = Body::full(text);
    }
    res
}
