//! A small HTTP/1.1 client: `rampart reload` (which asks a running
//! instance, through its admin API, to load its config file again) and the
//! alert webhook use it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use bytes::Bytes;
use http::{header, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::config;

/// Runs `rampart reload`; the config is read through `env`.
pub fn reload(config_path: &Path, admin: Option<SocketAddr>, env: &dyn config::Env) -> ExitCode {
    // The config is read for the admin address and token; if it does not
    // validate, the running instance would refuse it too: say so here.
    let model = match config::load_file(config_path, env) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(addr) = admin.or(model.admin.addr) else {
        eprintln!(
            "error: {}: the admin API is disabled ([admin] enabled = false); send SIGHUP instead",
            config_path.display()
        );
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(post(addr, "/api/reload", model.admin.token.as_deref())) {
        Ok((200, body)) => {
            println!("{}", body.trim_end());
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("error: reload refused ({status}): {}", body.trim_end());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: cannot reach the admin API at {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn post(addr: SocketAddr, path: &str, token: Option<&str>) -> Result<(u16, String), String> {
    let auth = token.map(|t| format!("Bearer {t}"));
    send(
        addr,
        "POST",
        path,
        auth.as_deref(),
        Bytes::new(),
        std::time::Duration::from_secs(60),
    )
    .await
}

/// One HTTP/1.1 request to `addr`; the answer's status and body.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Bytes,
    timeout: std::time::Duration,
) -> Result<(u16, String), String> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, addr.to_string());
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        if !body.is_empty() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}
