//! Just enough of the D-Bus wire protocol to ask systemd for a transient
//! scope: EXTERNAL auth, marshalling of the few types the Manager's
//! StartTransientUnit takes, and reading the reply or error. berth talks
//! to systemd's private socket (no bus daemon, no Hello) when it exists,
//! else to the system bus; a rootless caller talks to its own user
//! manager's private socket, as `systemctl --user` does.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

const PRIVATE: &str = "/run/systemd/private";
const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    #[error("D-Bus: connect to systemd at {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("D-Bus: {0}")]
    Io(#[from] std::io::Error),
    #[error("D-Bus: authentication refused: {0}")]
    Auth(String),
    #[error("D-Bus: {name}: {msg}")]
    Remote { name: String, msg: String },
    #[error("D-Bus: malformed message: {0}")]
    Malformed(&'static str),
}

/// A value of one of the types berth sends.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Bool(bool),
    U32(u32),
    U64(u64),
    ArrU32(Vec<u32>),
    Bytes(Vec<u8>),
}

impl Value {
    fn signature(&self) -> &'static str {
        match self {
            Value::Str(_) => "s",
            Value::Bool(_) => "b",
            Value::U32(_) => "u",
            Value::U64(_) => "t",
            Value::ArrU32(_) => "au",
            Value::Bytes(_) => "ay",
        }
    }
}

/// A little-endian D-Bus marshaller; alignment is relative to the start of
/// the buffer, which is where the message (or its 8-aligned body) starts.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, align: usize) {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
    }
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.pad(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    fn sig(&mut self, s: &str) {
        self.u8(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    /// An array: length placeholder, elements aligned to `align`, then the
    /// length patched to the elements' byte count (padding excluded).
    pub fn array(&mut self, align: usize, items: impl FnOnce(&mut Writer)) {
        self.u32(0);
        let at = self.buf.len() - 4;
        self.pad(align);
        let start = self.buf.len();
        items(self);
        let len = (self.buf.len() - start) as u32;
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Str(s) => self.str(s),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::U32(n) => self.u32(*n),
            Value::U64(n) => self.u64(*n),
            Value::ArrU32(list) => self.array(4, |w| list.iter().for_each(|n| w.u32(*n))),
            Value::Bytes(b) => self.array(1, |w| w.buf.extend_from_slice(b)),
        }
    }
    fn variant(&mut self, v: &Value) {
        self.sig(v.signature());
        self.value(v);
    }
    /// `a(sv)`: properties as systemd's unit APIs take them.
    pub fn properties(&mut self, props: &[(&str, Value)]) {
        self.array(8, |w| {
            for (name, v) in props {
                w.pad(8);
                w.str(name);
                w.variant(v);
            }
        });
    }
}

/// A method call's header fields.
pub struct Call<'a> {
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
    pub destination: &'a str,
    pub signature: &'a str,
}

/// Frames a METHOD_CALL message with `body` (already marshalled).
pub fn method_call(call: &Call, serial: u32, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    w.buf.extend_from_slice(&[b'l', 1, 0, 1]);
    w.u32(body.len() as u32);
    w.u32(serial);
    let fields: [(u8, &str, &str); 5] = [
        (1, "o", call.path),
        (2, "s", call.interface),
        (3, "s", call.member),
        (6, "s", call.destination),
        (8, "g", call.signature),
    ];
    w.array(8, |w| {
        for (code, sig, v) in fields.iter().filter(|f| !f.2.is_empty()) {
            w.pad(8);
            w.u8(*code);
            w.sig(sig);
            match *sig {
                "g" => w.sig(v),
                _ => w.str(v),
            }
        }
    });
    w.pad(8);
    w.buf.extend_from_slice(body);
    w.buf
}

/// What berth needs from a reply: its kind, whom it answers, and for an
/// error the name and first string argument.
#[derive(Debug, PartialEq)]
pub struct Reply {
    pub kind: u8,
    pub reply_serial: u32,
    pub error: Option<(String, String)>,
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn align(&mut self, a: usize) {
        self.pos = self.pos.div_ceil(a) * a;
    }
    fn take(&mut self, n: usize) -> Result<&[u8], DbusError> {
        let s = self
            .b
            .get(self.pos..self.pos + n)
            .ok_or(DbusError::Malformed("truncated"))?;
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DbusError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DbusError> {
        self.align(4);
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn str(&mut self) -> Result<String, DbusError> {
        let n = self.u32()? as usize;
        let s = String::from_utf8_lossy(self.take(n)?).to_string();
        self.take(1)?;
        Ok(s)
    }
    fn sig(&mut self) -> Result<String, DbusError> {
        let n = self.u8()? as usize;
        let s = String::from_utf8_lossy(self.take(n)?).to_string();
        self.take(1)?;
        Ok(s)
    }
}

/// Parses a whole message (header and body) as read from the socket.
pub fn parse_reply(msg: &[u8]) -> Result<Reply, DbusError> {
    if msg.first() != Some(&b'l') {
        return Err(DbusError::Malformed("not little-endian"));
    }
    let mut r = Reader { b: msg, pos: 1 };
    let kind = r.u8()?;
    r.take(2)?;
    r.u32()?;
    r.u32()?;
    let fields_len = r.u32()? as usize;
    r.align(8);
    let end = r.pos + fields_len;
    let (mut reply_serial, mut error_name, mut signature) = (0, None, String::new());
    while r.pos < end {
        r.align(8);
        let code = r.u8()?;
        let sig = r.sig()?;
        match sig.as_str() {
            "u" => {
                let v = r.u32()?;
                if code == 5 {
                    reply_serial = v;
                }
            }
            "g" => {
                let v = r.sig()?;
                if code == 8 {
                    signature = v;
                }
            }
            "s" | "o" => {
                let v = r.str()?;
                if code == 4 {
                    error_name = Some(v);
                }
            }
            _ => return Err(DbusError::Malformed("unexpected header field type")),
        }
    }
    r.align(8);
    let error = match error_name {
        Some(name) => {
            let text = if signature.starts_with('s') {
                r.str()?
            } else {
                String::new()
            };
            Some((name, text))
        }
        None => None,
    };
    Ok(Reply {
        kind,
        reply_serial,
        error,
    })
}

/// Bytes of a whole message whose 16-byte fixed header is `head`.
fn message_len(head: &[u8; 16]) -> usize {
    let body = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")) as usize;
    let fields = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes")) as usize;
    (16 + fields).div_ceil(8) * 8 + body
}

pub struct Connection {
    stream: BufReader<UnixStream>,
    serial: u32,
}

/// The user manager's private socket: under `$XDG_RUNTIME_DIR`, else
/// under logind's /run/user/UID, where `systemd --user` puts it.
fn user_manager_socket() -> String {
    let logind = format!("/run/user/{}", nix::unistd::geteuid());
    let dirs = std::env::var("XDG_RUNTIME_DIR").into_iter().chain([logind]);
    let sockets: Vec<String> = dirs.map(|d| format!("{d}/systemd/private")).collect();
    let found = sockets.iter().find(|s| Path::new(s).exists());
    found.unwrap_or(&sockets[0]).clone()
}

impl Connection {
    /// The system's systemd, or (`user`) the caller's own user manager.
    pub fn systemd(user: bool) -> Result<Connection, DbusError> {
        if user {
            return Connection::open(&user_manager_socket(), true);
        }
        let private = Path::new(PRIVATE).exists();
        Connection::open(if private { PRIVATE } else { SYSTEM_BUS }, private)
    }

    /// Connects and authenticates; a bus (not a private socket) wants a
    /// Hello first.
    fn open(path: &str, private: bool) -> Result<Connection, DbusError> {
        let stream = UnixStream::connect(path).map_err(|source| DbusError::Connect {
            path: path.to_owned(),
            source,
        })?;
        let mut c = Connection {
            stream: BufReader::new(stream),
            serial: 0,
        };
        c.auth()?;
        if !private {
            c.call(
                &Call {
                    path: "/org/freedesktop/DBus",
                    interface: "org.freedesktop.DBus",
                    member: "Hello",
                    destination: "org.freedesktop.DBus",
                    signature: "",
                },
                &[],
            )?;
        }
        Ok(c)
    }

    fn auth(&mut self) -> Result<(), DbusError> {
        let uid: String = nix::unistd::geteuid()
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        let s = self.stream.get_mut();
        s.write_all(format!("\0AUTH EXTERNAL {uid}\r\n").as_bytes())?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        if !line.starts_with("OK ") {
            return Err(DbusError::Auth(line.trim().to_string()));
        }
        self.stream.get_mut().write_all(b"BEGIN\r\n")?;
        Ok(())
    }

    /// Sends a call and waits for its reply, skipping unrelated messages.
    pub fn call(&mut self, call: &Call, body: &[u8]) -> Result<(), DbusError> {
        self.serial += 1;
        let serial = self.serial;
        self.stream
            .get_mut()
            .write_all(&method_call(call, serial, body))?;
        loop {
            let mut head = [0u8; 16];
            self.stream.read_exact(&mut head)?;
            let mut msg = head.to_vec();
            msg.resize(message_len(&head), 0);
            self.stream.read_exact(&mut msg[16..])?;
            let reply = parse_reply(&msg)?;
            if reply.reply_serial != serial {
                continue;
            }
            return match reply.error {
                Some((name, msg)) => Err(DbusError::Remote { name, msg }),
                None => Ok(()),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marshals_properties_with_alignment() {
        let mut w = Writer::default();
        w.properties(&[
            ("PIDs", Value::ArrU32(vec![7])),
            ("Delegate", Value::Bool(true)),
        ]);
        let expect: Vec<u8> = [
            &[44, 0, 0, 0, 0, 0, 0, 0][..], // array length, padding to the first struct
            &[4, 0, 0, 0],
            b"PIDs\0",
            &[2],
            b"au\0",
            &[0, 0, 0],                // pad to 4
            &[4, 0, 0, 0, 7, 0, 0, 0], // au: byte length 4, then 7
            &[8, 0, 0, 0],             // next struct starts 8-aligned at 32
            b"Delegate\0",
            &[1],
            b"b\0",
            &[1, 0, 0, 0], // at 48: true
        ]
        .concat();
        assert_eq!(w.buf, expect);
    }

    #[test]
    fn frames_a_call_and_parses_an_error_reply() {
        let call = Call {
            path: "/org/freedesktop/systemd1",
            interface: "org.freedesktop.systemd1.Manager",
            member: "StartTransientUnit",
            destination: "org.freedesktop.systemd1",
            signature: "ss",
        };
        let mut body = Writer::default();
        body.str("a.scope");
        body.str("fail");
        let msg = method_call(&call, 3, &body.buf);
        assert_eq!(&msg[..4], &[b'l', 1, 0, 1]);
        assert_eq!(message_len(msg[..16].try_into().unwrap()), msg.len());
        assert_eq!(msg.len() % 8, body.buf.len() % 8);

        // An ERROR reply to serial 3 with one string argument.
        let mut w = Writer::default();
        w.buf.extend_from_slice(&[b'l', 3, 1, 1]);
        let mut b = Writer::default();
        b.str("Unit a.scope already exists.");
        w.u32(b.buf.len() as u32);
        w.u32(9);
        w.array(8, |w| {
            w.pad(8);
            w.u8(4);
            w.sig("s");
            w.str("org.freedesktop.systemd1.UnitExists");
            w.pad(8);
            w.u8(5);
            w.sig("u");
            w.u32(3);
            w.pad(8);
            w.u8(8);
            w.sig("g");
            w.sig("s");
        });
        w.pad(8);
        w.buf.extend_from_slice(&b.buf);
        let r = parse_reply(&w.buf).unwrap();
        assert_eq!(r.kind, 3);
        assert_eq!(r.reply_serial, 3);
        assert_eq!(
            r.error,
            Some((
                "org.freedesktop.systemd1.UnitExists".into(),
                "Unit a.scope already exists.".into()
            ))
        );
        assert_eq!(message_len(w.buf[..16].try_into().unwrap()), w.buf.len());
    }
}
