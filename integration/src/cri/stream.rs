//! CRI's streaming Exec and Attach as kubelet's clients (`kubectl exec`,
//! `kubectl attach`) use them: Exec and Attach return a URL on
//! containerd's streaming server, which speaks the kubelet streaming
//! protocol; its WebSocket form (`v4.channel.k8s.io`) frames each message
//! with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 the final status (a
//! Kubernetes `Status` object, whose cause carries a non-zero exit code),
//! 4 the terminal's size.

use crate::exec::Out;
use std::net::TcpStream;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::Message;

const SUBPROTOCOL: &str = "v4.channel.k8s.io";
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
const RESIZE: u8 = 4;

/// What a client sends in a session: a terminal size first (for a session
/// with a terminal), then its stdin; once the output shows `prompt` (at
/// once if empty). containerd drops a size that comes before the process
/// runs. The client reads to the session's end, or until the output
/// shows `until` if set (containerd may close an attach session before the
/// last output of a container that exits).
#[derive(Default, Clone)]
pub struct Input {
    pub terminal: Option<(u16, u16)>,
    pub stdin: Vec<u8>,
    pub prompt: String,
    pub until: Option<String>,
}

/// Runs the exec session at `url` (from CRI's Exec) to its end: what it
/// printed and its exit code. Call it in containerd's network namespace
/// (the URL names its loopback).
pub fn exec(url: &str, input: Input) -> Result<Out, String> {
    let (mut out, status) = session(url, input)?;
    out.code = exit_code(status.as_deref())?;
    Ok(out)
}

/// Runs the attach session at `url` (from CRI's Attach) until the
/// container's output ends: what it printed (the code is the container's
/// business, not the session's: -1).
pub fn attach(url: &str, input: Input) -> Result<Out, String> {
    Ok(session(url, input)?.0)
}

/// Sends `input`, then reads the session at `url` to its end: its output,
/// and its final status if it sent one.
fn session(url: &str, input: Input) -> Result<(Out, Option<Vec<u8>>), String> {
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
    let mut out = Out {
        code: -1,
        stdout: String::new(),
        stderr: String::new(),
    };
    let mut status = None;
    let mut unsent = frames(&input);
    loop {
        if input.until.as_ref().is_some_and(|u| out.stdout.contains(u)) {
            break;
        }
        if out.stdout.contains(&input.prompt) {
            for frame in unsent.drain(..) {
                ws.send(Message::Binary(frame.into()))
                    .map_err(|e| err("send", &e))?;
            }
        }
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
    Ok((out, status))
}

/// The frames that carry `input`: the size (JSON, as kubectl sends it),
/// then stdin.
fn frames(input: &Input) -> Vec<Vec<u8>> {
    let framed = |channel: u8, data: &[u8]| [&[channel][..], data].concat();
    let mut frames = Vec::new();
    if let Some((width, height)) = input.terminal {
        let size = serde_json::json!({"Width": width, "Height": height}).to_string();
        frames.push(framed(RESIZE, size.as_bytes()));
    }
    if !input.stdin.is_empty() {
        frames.push(framed(STDIN, &input.stdin));
    }
    frames
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
