use bytes::Bytes;
use std::pin::Pin;
use std::task::{Context, Poll};
#[derive(Debug)]
pub struct Site(String);
impl Site {
    pub fn dir(root: std::path::PathBuf) -> std::io::Result<Site> {
        Ok(Site(root.display().to_string()))
    }
    pub fn demo(n: &str) -> Site {
        Site(n.to_string())
    }
    pub async fn serve<B>(&self, _r: &http::Request<B>) -> http::Response<crate::body::Body> {
        http::Response::new(crate::body::Body::full(format!(
            "<h1>Served by {}</h1>",
            self.0
        )))
    }
}
#[derive(Debug)]
pub struct FileStream;
impl http_body::Body for FileStream {
    type Data = Bytes;
    type Error = crate::body::BodyError;
    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(None)
    }
}
