//! HTTP and JSON plumbing: one port for REST and the gateway, the axum
//! handler, replies in Discord's error format, request bodies (JSON or
//! multipart).

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use super::gateway::gateway_session;
use super::model::{lock, Shared};

/// Starts the fake's server on a port of 127.0.0.1, on a thread of its own
/// (a runtime the tests' runtimes cannot stall): its address, its state,
/// and the sender that stops it.
pub(super) fn serve() -> (SocketAddr, Arc<Shared>, oneshot::Sender<()>) {
    let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let shared = Arc::new(Shared::new(addr.port()));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let state = shared.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            let (http_tx, http_rx) = mpsc::channel(64);
            let accept = tokio::spawn(accept_loop(listener, http_tx, state.clone()));
            let app = Router::new().fallback(handle).with_state(state);
            let http = HttpConns { rx: http_rx, addr };
            tokio::select! {
                _ = axum::serve(http, app) => {}
                _ = stop_rx => {}
            }
            accept.abort();
        });
    });
    (addr, shared, stop_tx)
}

pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Option<Value>,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub(super) fn ok(body: Value) -> Reply {
        Reply {
            status: 200,
            body: Some(body),
            headers: Vec::new(),
        }
    }
    pub(super) fn no_content() -> Reply {
        Reply {
            status: 204,
            body: None,
            headers: Vec::new(),
        }
    }
    pub(super) fn error(status: u16, code: u64, message: &str) -> Reply {
        Reply {
            status,
            body: Some(json!({"message": message, "code": code})),
            headers: Vec::new(),
        }
    }
    /// 400 "Invalid Form Body" with one error at `path` (dotted), as Discord
    /// nests them (`{"content": {"_errors": [{code, message}]}}`).
    pub(super) fn invalid(path: &str, code: &str, message: &str) -> Reply {
        let mut errors = json!({"_errors": [{"code": code, "message": message}]});
        for part in path.rsplit('.').filter(|p| !p.is_empty()) {
            errors = json!({ part: errors });
        }
        Reply {
            status: 400,
            body: Some(json!({"message": "Invalid Form Body", "code": 50035, "errors": errors})),
            headers: Vec::new(),
        }
    }

    /// The answer to a failed `POST /channels/*/messages`.
    pub(super) fn failure(status: u16, retry_after: f64) -> Reply {
        if status == 429 {
            // Discord's 429 body has no `code`: serenity reports it as an error
            // it could not decode, with code -1.
            return Reply {
                status,
                body: Some(
                    json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": false}),
                ),
                headers: vec![
                    ("retry-after", format!("{}", retry_after.ceil() as u64)),
                    ("x-ratelimit-limit", "5".into()),
                    ("x-ratelimit-remaining", "0".into()),
                    ("x-ratelimit-reset-after", format!("{retry_after:.3}")),
                    ("x-ratelimit-bucket", "fake-bucket".into()),
                    ("x-ratelimit-scope", "user".into()),
                ],
            };
        }
        let reason = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        Reply::error(status, 0, &format!("{status}: {reason}"))
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = match self.body {
            Some(b) => (status, axum::Json(b)).into_response(),
            None => status.into_response(),
        };
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert(k, v);
            }
        }
        resp
    }
}

/// The HTTP connections, handed over by [`accept_loop`].
struct HttpConns {
    rx: mpsc::Receiver<(TcpStream, SocketAddr)>,
    addr: SocketAddr,
}

impl axum::serve::Listener for HttpConns {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// Accepts connections and sends each to the gateway (a request for
/// `/gateway…`, which the REST API never gets: it is under `/api/v10`) or to
/// the HTTP server.
async fn accept_loop(
    listener: TcpListener,
    http: mpsc::Sender<(TcpStream, SocketAddr)>,
    shared: Arc<Shared>,
) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(c) => c,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        // Like Discord's servers: no Nagle delay on small writes (without
        // this a reply written in two parts waits ~40 ms for a delayed ACK).
        let _ = stream.set_nodelay(true);
        let http = http.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            if is_gateway(&stream).await {
                if lock(&shared.model).gateway_down {
                    // Unreachable: the connection ends before the handshake.
                    return;
                }
                gateway_session(stream, shared).await;
            } else {
                let _ = http.send((stream, addr)).await;
            }
        });
    }
}

async fn is_gateway(stream: &TcpStream) -> bool {
    const GATEWAY: &[u8] = b"GET /gateway";
    let mut buf = [0u8; GATEWAY.len()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) if n >= buf.len() => return buf == GATEWAY,
            Ok(Ok(n)) if n > 0 && buf[..n] == GATEWAY[..n] => {
                // Only part of the request line so far.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            _ => return false,
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let reply = lock(&shared.model).handle(&method, &uri, &headers, &body);
    shared.bump();
    reply
}

/// The JSON of a request (`payload_json` of a multipart one) and its files
/// (`filename`, `size`, `content` as text, `content_type`).
pub(super) fn parse_body(headers: &HeaderMap, raw: &Bytes) -> Result<(Value, Vec<Value>), String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("multipart/form-data") {
        return parse_multipart(ct, raw).ok_or_else(|| "bad multipart body".to_string());
    }
    if raw.is_empty() {
        return Ok((Value::Null, Vec::new()));
    }
    serde_json::from_slice(raw)
        .map(|v| (v, Vec::new()))
        .map_err(|e| e.to_string())
}

fn parse_multipart(ct: &str, body: &[u8]) -> Option<(Value, Vec<Value>)> {
    let boundary = ct
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delim = format!("--{boundary}");
    let mut json = Value::Null;
    let mut files = Vec::new();
    let mut rest = &body[find(body, delim.as_bytes())? + delim.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let end = find(rest, delim.as_bytes())?;
        let part = &rest[..end];
        rest = &rest[end + delim.len()..];
        let head_end = find(part, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&part[..head_end]).to_string();
        let mut data = &part[head_end + 4..];
        if data.ends_with(b"\r\n") {
            data = &data[..data.len() - 2];
        }
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))?;
        let attr = |key: &str| {
            disposition.split(';').find_map(|kv| {
                kv.trim()
                    .strip_prefix(&format!("{key}=\""))
                    .map(|v| v.trim_end_matches('"').to_string())
            })
        };
        let content_type = head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-type:")
                .then(|| l["content-type:".len()..].trim().to_string())
        });
        if attr("name").as_deref() == Some("payload_json") {
            json = serde_json::from_slice(data).ok()?;
        } else if let Some(filename) = attr("filename") {
            files.push(json!({
                "filename": filename,
                "size": data.len(),
                "content": String::from_utf8_lossy(data),
                "content_type": content_type,
            }));
        }
    }
    Some((json, files))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
