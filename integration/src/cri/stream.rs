//! CRI's streaming Exec as kubelet's clients (`kubectl exec`) use it: Exec
//! returns a URL on containerd's streaming server, which speaks the
//! kubelet streaming protocol; its WebSocket form (`v4.channel.k8s.io`)
//! frames each message with a channel byte: 1 stdout, 2 stderr, 3 the
//! final status (a Kubernetes `Status` object, whose cause carries a
//! non-zero exit code).

use crate::exec::Out;
use std::net::TcpStream;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::Message;

const SUBPROTOCOL: &str = "v4.channel.k8s.io";
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;

/// Runs the exec session at `url` (from CRI's Exec, stdin closed) to its
/// end: what it printed and its exit code. Call it in containerd's
/// network namespace (the URL names its loopback).
pub fn exec(url: &str) -> Result<Out, String> {
    let err = |what: &str, e: &dyn std::fmt::Display| format!("{what} {url}: {e}");
    // The streaming server upgrades the URL containerd gives (http://) to
    // a WebSocket: the same URL as ws://.
    let ws_url = url.replacen("http://", "ws://", 1);
    let mut request = ws_url
        .into_client_request()
        .map_err(|e| err("request", &e))?;
    let protocol = HeaderValue::from_static(SUBPROTOCOL);
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol);
    let authority = request.uri().authority().map(|a| a.as_str().to_owned());
    let stream =
        TcpStream::connect(authority.unwrap_or_default()).map_err(|e| err("connect", &e))?;
    stream
        .set_read_timeout(Some(crate::exec::DEADLINE))
        .map_err(|e| err("timeout", &e))?;
    let (mut ws, _) = tungstenite::client(request, stream).map_err(|e| err("handshake", &e))?;
    let (mut out, mut status) = (
        Out {
            code: -1,
            stdout: String::new(),
            stderr: String::new(),
        },
        None,
    );
    loop {
        match ws.read() {
            Ok(Message::Binary(frame)) => match frame.split_first() {
                Some((&STDOUT, data)) => out.stdout += &String::from_utf8_lossy(data),
                Some((&STDERR, data)) => out.stderr += &String::from_utf8_lossy(data),
                Some((&STATUS, data)) if !data.is_empty() => status = Some(data.to_vec()),
                _ => {}
            },
            Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => break,
            Ok(_) => {}
            Err(e) => return Err(err("read", &e)),
        }
    }
    out.code = exit_code(status.as_deref())?;
    Ok(out)
}

/// The exit code a final `Status` gives: 0 for Success, else the cause
/// `ExitCode`'s message.
fn exit_code(status: Option<&[u8]>) -> Result<i32, String> {
    let status = status.ok_or("the session ended without a status")?;
    let status: serde_json::Value =
        serde_json::from_slice(status).map_err(|e| format!("status: {e}"))?;
    if status["status"] == "Success" {
        return Ok(0);
    }
    let causes = status["details"]["causes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let code = causes.iter().find(|c| c["reason"] == "ExitCode");
    code.and_then(|c| c["message"].as_str()?.parse().ok())
        .ok_or_else(|| format!("no exit code in {status}"))
}
