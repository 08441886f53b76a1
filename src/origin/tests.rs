//! Tests of the origin role, calling [`Site::serve`] directly.

use std::fs;
use std::path::Path;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;

use super::path::ReqPath;
use super::Body;
use super::Site;

fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).expect("test request")
}

async fn get(site: &Site, uri: &str, headers: &[(&str, &str)]) -> Response<Body> {
    site.serve(&request("GET", uri, headers)).await
}

async fn bytes_of(res: Response<Body>) -> Bytes {
    res.into_body()
        .collect()
        .await
        .expect("body reads to the end")
        .to_bytes()
}

fn header(res: &Response<Body>, name: header::HeaderName) -> &str {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A byte pattern that shows misplaced offsets.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A temp dir holding `root/` (served) with a few files, and `secret`
/// next to it (never served).
fn fixture() -> (tempfile::TempDir, Site) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("sub")).expect("mkdir");
    fs::create_dir_all(root.join("a")).expect("mkdir");
    fs::create_dir_all(root.join("empty")).expect("mkdir");
    fs::write(root.join("index.html"), "<h1>home</h1>").expect("write");
    fs::write(root.join("sub/index.html"), "<h1>sub</h1>").expect("write");
    fs::write(root.join("style.css"), "body{}").expect("write");
    fs::write(root.join("data.json"), "{}").expect("write");
    fs::write(root.join("pic.png"), [0x89, b'P', b'N', b'G']).expect("write");
    fs::write(root.join("blob.unknownext"), "?").expect("write");
    fs::write(root.join("bytes.bin"), pattern(256)).expect("write");
    fs::write(root.join("empty.txt"), "").expect("write");
    fs::write(tmp.path().join("secret"), "TOP SECRET").expect("write");
    fs::write(tmp.path().join("x"), "TOP SECRET").expect("write");
    let site = Site::dir(root).expect("site");
    (tmp, site)
}

#[tokio::test]
async fn content_type_and_headers() {
    let (_tmp, site) = fixture();
    for (uri, ct) in [
        ("/", "text/html; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/data.json", "application/json; charset=utf-8"),
        ("/pic.png", "image/png"),
        ("/blob.unknownext", "application/octet-stream"),
    ] {
        let res = get(&site, uri, &[]).await;
        assert_eq!(res.status(), StatusCode::OK, "{uri}");
        assert_eq!(header(&res, header::CONTENT_TYPE), ct, "{uri}");
    }
    let res = get(&site, "/index.html?x=1", &[]).await;
    assert_eq!(header(&res, header::CONTENT_LENGTH), "13");
    assert_eq!(header(&res, header::ACCEPT_RANGES), "bytes");
    assert!(header(&res, header::ETAG).starts_with('"'));
    assert!(httpdate::parse_http_date(header(&res, header::LAST_MODIFIED)).is_ok());
    assert!(res.headers().get(header::SERVER).is_none());
    assert_eq!(bytes_of(res).await, "<h1>home</h1>");
}

#[tokio::test]
async fn directories_and_missing_files() {
    let (_tmp, site) = fixture();
    let res = get(&site, "/sub?q=1", &[]).await;
    assert_eq!(res.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(header(&res, header::LOCATION), "/sub/?q=1");
    let res = get(&site, "//sub", &[]).await;
    assert_eq!(header(&res, header::LOCATION), "/sub/", "never `//host`");
    let res = get(&site, "/sub/", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(bytes_of(res).await, "<h1>sub</h1>");
    for uri in ["/empty/", "/nope.html", "/style.css/", "/nope/deeper"] {
        let res = get(&site, uri, &[]).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(header(&res, header::CONTENT_TYPE), "text/plain; charset=utf-8");
        assert_eq!(bytes_of(res).await, "404 Not Found\n");
    }
    let res = get(&site, "/empty.txt", &[("range", "bytes=0-5")]).await;
    assert_eq!(res.status(), StatusCode::OK, "ranges of empty files are ignored");
    assert_eq!(header(&res, header::CONTENT_LENGTH), "0");
}

#[tokio::test]
async fn if_none_match() {
    let (_tmp, site) = fixture();
    let res = get(&site, "/style.css", &[]).await;
    let etag = header(&res, header::ETAG).to_owned();
    let weak = format!("W/{etag}");
    let listed = format!("\"nope\", {etag}");
    for inm in [etag.as_str(), &weak, &listed, "*"] {
        let res = get(&site, "/style.css", &[("if-none-match", inm)]).await;
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED, "{inm}");
        assert_eq!(header(&res, header::ETAG), etag);
        assert!(res.body().is_end_stream());
    }
    // A non-matching If-None-Match wins over a matching If-Modified-Since.
    let later = httpdate::fmt_http_date(std::time::SystemTime::now() + std::time::Duration::from_secs(3600));
    let res = get(
        &site,
        "/style.css",
        &[("if-none-match", "\"nope\""), ("if-modified-since", &later)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(bytes_of(res).await, "body{}");
}

#[tokio::test]
async fn if_modified_since() {
    let (_tmp, site) = fixture();
    let res = get(&site, "/style.css", &[]).await;
    let lm = header(&res, header::LAST_MODIFIED).to_owned();
    let res = get(&site, "/style.css", &[("if-modified-since", &lm)]).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert!(res.body().is_end_stream());
    let old = "Sat, 01 Jan 2000 00:00:00 GMT";
    let res = get(&site, "/style.css", &[("if-modified-since", old)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = get(&site, "/style.css", &[("if-modified-since", "garbage")]).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn if_match_and_if_unmodified_since() {
    let (_tmp, site) = fixture();
    let etag = header(&get(&site, "/style.css", &[]).await, header::ETAG).to_owned();
    let res = get(&site, "/style.css", &[("if-match", &etag)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = get(&site, "/style.css", &[("if-match", "\"nope\"")]).await;
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    let weak = format!("W/{etag}");
    let res = get(&site, "/style.css", &[("if-match", &weak)]).await;
    assert_eq!(
        res.status(),
        StatusCode::PRECONDITION_FAILED,
        "If-Match is strong"
    );
    let old = "Sat, 01 Jan 2000 00:00:00 GMT";
    let res = get(&site, "/style.css", &[("if-unmodified-since", old)]).await;
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn byte_ranges() {
    let (_tmp, site) = fixture();
    let all = pattern(256);
    for (range, from, to) in [
        ("bytes=10-19", 10, 19),
        ("bytes=250-", 250, 255),
        ("bytes=-6", 250, 255),
        ("bytes=200-9999", 200, 255),
        ("bytes=-1000", 0, 255),
    ] {
        let res = get(&site, "/bytes.bin", &[("range", range)]).await;
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&res, header::CONTENT_RANGE),
            format!("bytes {from}-{to}/256"),
            "{range}"
        );
        assert_eq!(header(&res, header::CONTENT_LENGTH), (to - from + 1).to_string());
        assert_eq!(bytes_of(res).await, all[from..=to], "{range}");
    }
}

#[tokio::test]
async fn unsatisfiable_and_ignored_ranges() {
    let (_tmp, site) = fixture();
    for range in ["bytes=256-", "bytes=1000-2000", "bytes=-0"] {
        let res = get(&site, "/bytes.bin", &[("range", range)]).await;
        assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(header(&res, header::CONTENT_RANGE), "bytes */256");
    }
    for range in ["bytes=0-1,5-6", "bytes=9-3", "lines=1-2", "bytes=abc"] {
        let res = get(&site, "/bytes.bin", &[("range", range)]).await;
        assert_eq!(res.status(), StatusCode::OK, "{range}");
        assert_eq!(bytes_of(res).await.len(), 256);
    }
}

#[tokio::test]
async fn if_range() {
    let (_tmp, site) = fixture();
    let res = get(&site, "/bytes.bin", &[]).await;
    let etag = header(&res, header::ETAG).to_owned();
    let lm = header(&res, header::LAST_MODIFIED).to_owned();
    let range = ("range", "bytes=0-3");
    for (validator, status) in [
        (etag.as_str(), StatusCode::PARTIAL_CONTENT),
        (lm.as_str(), StatusCode::PARTIAL_CONTENT),
        ("\"stale\"", StatusCode::OK),
        ("Sat, 01 Jan 2000 00:00:00 GMT", StatusCode::OK),
    ] {
        let res = get(&site, "/bytes.bin", &[range, ("if-range", validator)]).await;
        assert_eq!(res.status(), status, "{validator}");
    }
}

#[tokio::test]
async fn head_sends_headers_only() {
    let (_tmp, site) = fixture();
    let got = get(&site, "/bytes.bin", &[]).await;
    let res = site.serve(&request("HEAD", "/bytes.bin", &[])).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, header::CONTENT_LENGTH), "256");
    assert_eq!(res.headers().get(header::ETAG), got.headers().get(header::ETAG));
    assert!(matches!(res.body(), Body::Empty));
    let res = site.serve(&request("HEAD", "/missing", &[])).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(matches!(res.body(), Body::Empty));
}

#[tokio::test]
async fn other_methods_are_refused() {
    let (_tmp, site) = fixture();
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let res = site.serve(&request(method, "/index.html", &[])).await;
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(
            res.headers().get(header::ALLOW),
            Some(&HeaderValue::from_static("GET, HEAD"))
        );
    }
}

#[tokio::test]
async fn traversal_is_refused() {
    let (_tmp, site) = fixture();
    for uri in [
        "/../x",
        "/../secret",
        "/%2e%2e/x",
        "/%2E%2e/%2e%2E/etc/passwd",
        "/a/..%2f..%2fx",
        "/a/%2e%2e/%2e%2e/secret",
        "/a%5c..%5cx",
        "/a%2fb",
        "/%00",
        "/index.html%00.png",
        "/%ff",
        "/%zz",
        "/%",
        "/sub/%2e%2e%2f%2e%2e%2fsecret",
    ] {
        let res = get(&site, uri, &[]).await;
        assert!(
            matches!(res.status(), StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
            "{uri}: {}",
            res.status()
        );
        assert!(!bytes_of(res).await.windows(3).any(|w| w == b"TOP"), "{uri}");
    }
    // Raw backslashes never reach a Uri, but the parser refuses them too.
    assert_eq!(ReqPath::parse("/a\\..\\x"), None);
    assert_eq!(ReqPath::parse("a"), None);
}

#[tokio::test]
async fn path_parsing() {
    let p = ReqPath::parse("/a//./b%20c/").expect("plain path");
    assert_eq!(p.segments, ["a", "b c"]);
    assert!(p.trailing_slash);
    assert_eq!(p.dir_location(), "/a/b%20c/");
    let p = ReqPath::parse("/caf%C3%A9").expect("utf-8 path");
    assert_eq!(p.segments, ["café"]);
    assert!(!p.trailing_slash);
    assert!(ReqPath::parse("/").expect("root").trailing_slash);
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_must_stay_inside_the_root() {
    let (tmp, site) = fixture();
    let root = tmp.path().join("root");
    std::os::unix::fs::symlink(tmp.path().join("secret"), root.join("out.txt")).expect("symlink");
    std::os::unix::fs::symlink(tmp.path(), root.join("outdir")).expect("symlink");
    std::os::unix::fs::symlink(root.join("style.css"), root.join("in.css")).expect("symlink");
    std::os::unix::fs::symlink("sub", root.join("subl")).expect("symlink");
    for uri in ["/out.txt", "/outdir/secret", "/outdir/x"] {
        let res = get(&site, uri, &[]).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{uri}");
        assert!(!bytes_of(res).await.windows(3).any(|w| w == b"TOP"), "{uri}");
    }
    let res = get(&site, "/in.css", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(bytes_of(res).await, "body{}");
    let res = get(&site, "/subl/", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(bytes_of(res).await, "<h1>sub</h1>");
    // An index.html that is a symlink out of the root is refused too.
    fs::create_dir(root.join("trap")).expect("mkdir");
    std::os::unix::fs::symlink(tmp.path().join("secret"), root.join("trap/index.html")).expect("symlink");
    assert_eq!(get(&site, "/trap/", &[]).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn large_files_stream_from_disk() {
    let (tmp, site) = fixture();
    let content = pattern(300 * 1024);
    fs::write(tmp.path().join("root/big.bin"), &content).expect("write");

    let res = get(&site, "/big.bin", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, header::CONTENT_LENGTH), "307200");
    assert!(matches!(res.body(), Body::Stream(_)));
    assert_eq!(res.body().size_hint().exact(), Some(307_200));
    assert!(!res.body().is_end_stream());
    let mut body = res.into_body();
    let mut got = Vec::new();
    while let Some(frame) = body.frame().await {
        let data = frame.expect("frame").into_data().expect("data frame");
        assert!(data.len() <= super::file::CHUNK);
        got.extend_from_slice(&data);
        assert_eq!(body.size_hint().exact(), Some((content.len() - got.len()) as u64));
    }
    assert!(body.is_end_stream());
    assert_eq!(got, content);

    // A range larger than a chunk streams too, from the right offset.
    let res = get(&site, "/big.bin", &[("range", "bytes=1000-200000")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert!(matches!(res.body(), Body::Stream(_)));
    assert_eq!(bytes_of(res).await, content[1000..=200_000]);
    // A small range of a large file is read into memory.
    let res = get(&site, "/big.bin", &[("range", "bytes=-100")]).await;
    assert!(matches!(res.body(), Body::Full(_)));
    assert_eq!(bytes_of(res).await, content[content.len() - 100..]);
}

#[tokio::test]
async fn a_file_that_shrinks_ends_the_body_with_an_error() {
    let (tmp, site) = fixture();
    let path = tmp.path().join("root/big.bin");
    fs::write(&path, pattern(300 * 1024)).expect("write");
    let res = get(&site, "/big.bin", &[]).await;
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(100 * 1024))
        .expect("truncate");
    assert!(res.into_body().collect().await.is_err());
}

#[test]
fn dir_requires_a_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("f");
    fs::write(&file, "x").expect("write");
    assert!(Site::dir(file).is_err());
    assert!(Site::dir(tmp.path().join("missing")).is_err());
    let site = Site::dir(tmp.path().to_path_buf()).expect("site");
    let canonical = fs::canonicalize(tmp.path()).expect("canonical");
    assert_eq!(Path::new(site.name()), canonical);
}

#[tokio::test]
async fn demo_site_names_its_server() {
    let site = Site::demo("web-02");
    assert_eq!(site.name(), "web-02");
    for uri in ["/", "/index.html", "/about.html"] {
        let res = get(&site, uri, &[]).await;
        assert_eq!(res.status(), StatusCode::OK, "{uri}");
        assert_eq!(header(&res, header::CONTENT_TYPE), "text/html; charset=utf-8");
        let body = String::from_utf8(bytes_of(res).await.to_vec()).expect("utf-8");
        assert!(body.contains("web-02"), "{uri}");
        assert!(body.contains("rampart demo"), "{uri}");
        assert!(!body.contains("{{"), "{uri}: template fully filled");
        assert!(!body.contains("http://") && !body.contains("https://"), "{uri}");
    }
    let res = get(&site, "/", &[]).await;
    assert!(String::from_utf8_lossy(&bytes_of(res).await).contains("Served by"));

    let res = get(&site, "/health", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, header::CONTENT_TYPE), "text/plain; charset=utf-8");
    assert_eq!(bytes_of(res).await, "ok");

    let res = get(&site, "/style.css", &[]).await;
    assert_eq!(header(&res, header::CONTENT_TYPE), "text/css; charset=utf-8");
    for uri in ["/nope", "/about.html/", "/../index.html", "/health/x"] {
        assert_eq!(
            get(&site, uri, &[]).await.status(),
            StatusCode::NOT_FOUND,
            "{uri}"
        );
    }
}

#[tokio::test]
async fn demo_site_validators_and_ranges() {
    let a = Site::demo("web-01");
    let b = Site::demo("web-03");
    let ra = get(&a, "/", &[]).await;
    let etag = header(&ra, header::ETAG).to_owned();
    assert_ne!(etag, header(&get(&b, "/", &[]).await, header::ETAG));
    let res = get(&a, "/", &[("if-none-match", &etag)]).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    let res = get(&a, "/health", &[("range", "bytes=1-")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(bytes_of(res).await, "k");
    let res = a.serve(&request("HEAD", "/about.html", &[])).await;
    let len = header(&res, header::CONTENT_LENGTH).to_owned();
    assert_eq!(
        len,
        bytes_of(get(&a, "/about.html", &[]).await)
            .await
            .len()
            .to_string()
    );
}

#[tokio::test]
async fn demo_site_escapes_the_name() {
    let site = Site::demo("<script>\"x\"&");
    let body = bytes_of(get(&site, "/", &[]).await).await;
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("&lt;script&gt;&quot;x&quot;&amp;"));
    assert!(!body.contains("<script>"));
}

#[tokio::test]
async fn odd_headers_never_panic() {
    let (_tmp, site) = fixture();
    let odd = [
        ("range", "bytes=18446744073709551615-18446744073709551616"),
        ("range", "bytes=-18446744073709551616"),
        ("range", "bytes=--1"),
        ("range", "bytes==0-1"),
        ("if-range", "W/"),
        ("if-range", "\""),
        ("if-none-match", "\"unterminated"),
        ("if-none-match", "W/W/\"x\""),
        ("if-match", ",,,"),
        ("if-modified-since", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ("if-unmodified-since", "Thu, 01 Jan 1970 00:00:00 GMT"),
    ];
    for h in odd {
        for uri in ["/bytes.bin", "/", "/missing"] {
            let res = get(&site, uri, &[h, ("range", "bytes=0-1")]).await;
            let _ = bytes_of(res).await;
        }
    }
}

/// Compile-time checks: what a hyper service needs of these types.
#[allow(dead_code)]
fn serve_future_is_send<'a>(
    site: &'a Site,
    req: &'a Request<hyper::body::Incoming>,
) -> impl std::future::Future<Output = Response<Body>> + Send + 'a {
    fn send_static_unpin<T: Send + Unpin + 'static + std::fmt::Debug>() {}
    send_static_unpin::<super::FileStream>();
    send_static_unpin::<Site>();
    site.serve(req)
}
