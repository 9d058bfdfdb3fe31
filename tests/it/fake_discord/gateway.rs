//! The websocket gateway: HELLO, IDENTIFY → READY, heartbeats, RESUME, and
//! the dispatches and closes the tests send to every session.

use std::sync::Arc;

use serde_json::{json, Value};
use serenity::futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::fx;
use super::model::{lock, Shared};

#[derive(Clone, Debug)]
pub(super) enum GwOut {
    Dispatch(String, Value),
    Close(u16),
}

pub(super) async fn gateway_session(stream: TcpStream, shared: Arc<Shared>) {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response as WsResponse};
    let mut path = String::new();
    // The callback's type is tungstenite's, large error and all.
    #[allow(clippy::result_large_err)]
    let ws = tokio_tungstenite::accept_hdr_async(stream, |req: &Request, resp: WsResponse| {
        path = req.uri().to_string();
        Ok(resp)
    })
    .await;
    let Ok(ws) = ws else {
        lock(&shared.model)
            .unexpected
            .push("a gateway connection that failed the websocket handshake".into());
        shared.bump();
        return;
    };
    let interval = {
        let mut m = lock(&shared.model);
        m.gateway_paths.push(path);
        m.heartbeat_interval
    };
    shared.bump();
    let (mut tx, mut rx) = ws.split();
    let hello = json!({"op": 10, "d": {"heartbeat_interval": interval}});
    if tx.send(WsMessage::Text(hello.to_string())).await.is_err() {
        return;
    }
    let mut events: Option<broadcast::Receiver<GwOut>> = None;
    let mut session = String::new();
    let mut seq = 0u64;
    loop {
        let out = tokio::select! {
            frame = rx.next() => {
                let text = match frame {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Binary(_))) => {
                        note_unexpected(&shared, "a binary gateway frame".into());
                        continue;
                    }
                    Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                    note_unexpected(&shared, format!("a gateway frame that is not JSON: {text}"));
                    continue;
                };
                match frame["op"].as_u64() {
                    Some(2) => {
                        events = Some(shared.gateway.subscribe());
                        let ready = {
                            let mut m = lock(&shared.model);
                            m.identifies.push(frame["d"].clone());
                            let mut ready = fx::ready(m.app_id, m.bot_id, m.port);
                            ready["guilds"] = json!([{"id": m.guild_id.to_string(), "unavailable": true}]);
                            session = ready["session_id"].as_str().unwrap_or_default().to_string();
                            m.sessions.insert(session.clone(), 1);
                            ready
                        };
                        seq = 1;
                        let sent = tx
                            .send(WsMessage::Text(json!({"op": 0, "s": 1, "t": "READY", "d": ready}).to_string()))
                            .await;
                        lock(&shared.model).ready_sent += 1;
                        shared.bump();
                        if sent.is_err() {
                            break;
                        }
                        continue;
                    }
                    Some(1) => {
                        lock(&shared.model).heartbeats.push(frame["d"].clone());
                        shared.bump();
                        json!({"op": 11})
                    }
                    // A presence update: accepted, not kept.
                    Some(3) => continue,
                    Some(6) => {
                        let wanted = frame["d"]["session_id"].as_str().unwrap_or_default().to_string();
                        let last = lock(&shared.model).sessions.get(&wanted).copied();
                        match last {
                            Some(last) => {
                                events = Some(shared.gateway.subscribe());
                                session = wanted;
                                seq = last.max(frame["d"]["seq"].as_u64().unwrap_or(0)) + 1;
                                let mut m = lock(&shared.model);
                                m.resumes += 1;
                                m.sessions.insert(session.clone(), seq);
                                drop(m);
                                shared.bump();
                                json!({"op": 0, "s": seq, "t": "RESUMED", "d": {}})
                            }
                            None => json!({"op": 9, "d": false}),
                        }
                    }
                    _ => {
                        note_unexpected(&shared, format!("gateway frame {text}"));
                        continue;
                    }
                }
            }
            out = next_out(&mut events) => match out {
                GwOut::Dispatch(kind, d) => {
                    seq += 1;
                    lock(&shared.model).sessions.insert(session.clone(), seq);
                    json!({"op": 0, "s": seq, "t": kind, "d": d})
                }
                GwOut::Close(code) => {
                    let frame = CloseFrame { code: CloseCode::from(code), reason: "fake Discord".into() };
                    let _ = tx.send(WsMessage::Close(Some(frame))).await;
                    break;
                }
            },
        };
        if tx.send(WsMessage::Text(out.to_string())).await.is_err() {
            break;
        }
    }
}

async fn next_out(rx: &mut Option<broadcast::Receiver<GwOut>>) -> GwOut {
    let Some(rx) = rx else {
        return std::future::pending().await;
    };
    loop {
        match rx.recv().await {
            Ok(out) => return out,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
        }
    }
}

fn note_unexpected(shared: &Shared, what: String) {
    lock(&shared.model).unexpected.push(what);
    shared.bump();
}
