//! The few rtnetlink requests `linux.netDevices` needs (find a link, list
//! its addresses, move it to another network namespace, add an address,
//! set it up), over a NETLINK_ROUTE socket of one namespace.
//!
//! A socket stays in the network namespace it was made in, so a socket
//! made on a short-lived thread that joined the container's namespace
//! talks to that namespace while berth itself never leaves its own.

use std::io::{Error, ErrorKind, Result};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const HEADER: usize = std::mem::size_of::<libc::nlmsghdr>();
/// ifinfomsg and ifaddrmsg as the kernel lays them out.
const IFINFO: usize = 16;
const IFADDR: usize = 8;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;

/// The index of `lo`, the same in every network namespace.
pub const LOOPBACK: i32 = 1;

/// A link of the socket's namespace.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    pub index: i32,
    pub up: bool,
}

/// An address of a link, as the kernel reported it: enough to add it
/// again elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct Address {
    family: u8,
    prefix_len: u8,
    scope: u8,
    flags: u32,
    /// (attribute type, value) of IFA_LOCAL, IFA_ADDRESS and IFA_BROADCAST.
    attrs: Vec<(u16, Vec<u8>)>,
}

impl Address {
    /// A permanent address of global scope: one a user configured, that
    /// means the same in any namespace (link-local, host and dynamic
    /// addresses belong to where they were made, as in runc).
    pub fn portable(&self) -> bool {
        self.flags & libc::IFA_F_PERMANENT != 0 && self.scope == libc::RT_SCOPE_UNIVERSE
    }
}

impl std::fmt::Display for Address {
    /// The address as `ip` prints it: local (else peer) address and prefix.
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let value = |kind| self.attrs.iter().find(|(k, _)| *k == kind).map(|(_, v)| v);
        let ip: Option<std::net::IpAddr> = match value(IFA_LOCAL).or(value(IFA_ADDRESS)) {
            Some(v) if v.len() == 4 => Some(<[u8; 4]>::try_from(&v[..]).unwrap().into()),
            Some(v) if v.len() == 16 => Some(<[u8; 16]>::try_from(&v[..]).unwrap().into()),
            _ => None,
        };
        match ip {
            Some(ip) => write!(f, "{ip}/{}", self.prefix_len),
            None => write!(f, "(family {})/{}", self.family, self.prefix_len),
        }
    }
}

pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    /// A socket of berth's own network namespace.
    pub fn open() -> Result<Socket> {
        // SAFETY: socket(2) with constant arguments; the fd is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(Error::last_os_error());
        }
        // SAFETY: fd was just returned by socket(2) and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let on: libc::c_int = 1;
        // SAFETY: setsockopt reads one int from a live local. Extended acks
        // only add the kernel's own words to errors: failure is harmless.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_NETLINK,
                libc::NETLINK_EXT_ACK,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        Ok(Socket { fd, seq: 0 })
    }

    /// A socket of the network namespace `netns`, made on a thread that
    /// joins it and ends.
    pub fn open_in(netns: BorrowedFd) -> Result<Socket> {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)?;
                Socket::open()
            })
            .join()
            .unwrap_or_else(|_| Err(Error::other("the netlink thread panicked")))
        })
    }

    /// The link named `name`.
    pub fn link(&mut self, name: &str) -> Result<Link> {
        let mut body = ifinfo(0, 0, 0);
        attr(&mut body, IFLA_IFNAME, &c_string(name));
        let replies = self.request(libc::RTM_GETLINK, 0, &body)?;
        let info = replies
            .iter()
            .find(|(t, p)| *t == libc::RTM_NEWLINK && p.len() >= IFINFO)
            .map(|(_, p)| p)
            .ok_or_else(|| Error::new(ErrorKind::InvalidData, "no link in the kernel's reply"))?;
        let index = i32::from_ne_bytes(info[4..8].try_into().unwrap());
        let flags = u32::from_ne_bytes(info[8..12].try_into().unwrap());
        Ok(Link {
            index,
            up: flags & libc::IFF_UP as u32 != 0,
        })
    }

    /// Every address of link `index`.
    pub fn addresses(&mut self, index: i32) -> Result<Vec<Address>> {
        let body = vec![0u8; IFADDR];
        let replies = self.request(libc::RTM_GETADDR, libc::NLM_F_DUMP as u16, &body)?;
        Ok(replies
            .iter()
            .filter(|(t, p)| *t == libc::RTM_NEWADDR && p.len() >= IFADDR)
            .filter(|(_, p)| u32::from_ne_bytes(p[4..8].try_into().unwrap()) == index as u32)
            .map(|(_, p)| address(p))
            .collect())
    }

    /// Moves link `index` into the namespace `netns`, named `name` there,
    /// in one request.
    pub fn move_link(&mut self, index: i32, netns: BorrowedFd, name: &str) -> Result<()> {
        let mut body = ifinfo(index, 0, 0);
        attr(
            &mut body,
            IFLA_NET_NS_FD,
            &(netns.as_raw_fd() as u32).to_ne_bytes(),
        );
        attr(&mut body, IFLA_IFNAME, &c_string(name));
        self.request(libc::RTM_NEWLINK, 0, &body).map(drop)
    }

    pub fn add_address(&mut self, index: i32, a: &Address) -> Result<()> {
        let mut body = vec![a.family, a.prefix_len, 0, a.scope];
        body.extend_from_slice(&(index as u32).to_ne_bytes());
        for (kind, value) in &a.attrs {
            attr(&mut body, *kind, value);
        }
        let flags = (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
        self.request(libc::RTM_NEWADDR, flags, &body).map(drop)
    }

    pub fn set_up(&mut self, index: i32) -> Result<()> {
        let up = libc::IFF_UP as u32;
        self.request(libc::RTM_NEWLINK, 0, &ifinfo(index, up, up))
            .map(drop)
    }

    /// Sends one request and collects the replies up to its ack (or the
    /// end of a dump); a refusal is the kernel's errno and its message.
    fn request(&mut self, kind: u16, flags: u16, body: &[u8]) -> Result<Vec<(u16, Vec<u8>)>> {
        self.seq += 1;
        let len = (HEADER + body.len()) as u32;
        let flags = flags | (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
        let mut msg = Vec::with_capacity(len as usize);
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&flags.to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        nix::sys::socket::send(
            self.fd.as_raw_fd(),
            &msg,
            nix::sys::socket::MsgFlags::empty(),
        )?;
        let mut replies = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = nix::sys::socket::recv(
                self.fd.as_raw_fd(),
                &mut buf,
                nix::sys::socket::MsgFlags::empty(),
            )?;
            for (kind, flags, seq, payload) in messages(&buf[..n]) {
                if seq != self.seq {
                    continue;
                }
                match kind as libc::c_int {
                    libc::NLMSG_DONE => return Ok(replies),
                    libc::NLMSG_ERROR => return ack(flags, payload).map(|()| replies),
                    _ => replies.push((kind, payload.to_vec())),
                }
            }
        }
    }
}

/// The messages of one datagram: (type, flags, sequence, payload).
fn messages(mut buf: &[u8]) -> Vec<(u16, u16, u32, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= HEADER {
        let len = u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize;
        if len < HEADER || len > buf.len() {
            break;
        }
        let kind = u16::from_ne_bytes(buf[4..6].try_into().unwrap());
        let flags = u16::from_ne_bytes(buf[6..8].try_into().unwrap());
        let seq = u32::from_ne_bytes(buf[8..12].try_into().unwrap());
        out.push((kind, flags, seq, &buf[HEADER..len]));
        buf = &buf[aligned(len).min(buf.len())..];
    }
    out
}

/// An NLMSG_ERROR payload: 0 is the ack, else the errno, with the
/// kernel's extended-ack message when it gave one.
fn ack(flags: u16, payload: &[u8]) -> Result<()> {
    let Some(code) = payload.get(0..4) else {
        return Err(Error::new(ErrorKind::InvalidData, "short netlink error"));
    };
    let errno = -i32::from_ne_bytes(code.try_into().unwrap());
    if errno == 0 {
        return Ok(());
    }
    let os = Error::from_raw_os_error(errno);
    let Some(text) = extended_message(flags, payload) else {
        return Err(os);
    };
    Err(Error::new(os.kind(), format!("{os}: {text}")))
}

fn extended_message(flags: u16, payload: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    // After the errno comes the request's header, and its payload too
    // unless the kernel capped it.
    let echoed = match flags & NLM_F_CAPPED {
        0 => u32::from_ne_bytes(payload.get(4..8)?.try_into().ok()?) as usize,
        _ => HEADER,
    };
    let tlvs = payload.get(4 + aligned(echoed)..)?;
    attrs(tlvs)
        .into_iter()
        .find(|(kind, _)| *kind == NLMSGERR_ATTR_MSG)
        .map(|(_, v)| {
            String::from_utf8_lossy(v)
                .trim_end_matches('\0')
                .to_string()
        })
}

fn address(payload: &[u8]) -> Address {
    let mut flags = payload[2] as u32;
    let mut kept = Vec::new();
    for (kind, value) in attrs(&payload[IFADDR..]) {
        match kind {
            IFA_FLAGS if value.len() >= 4 => {
                flags = u32::from_ne_bytes(value[..4].try_into().unwrap())
            }
            IFA_LOCAL | IFA_ADDRESS | IFA_BROADCAST => kept.push((kind, value.to_vec())),
            _ => {}
        }
    }
    Address {
        family: payload[0],
        prefix_len: payload[1],
        scope: payload[3],
        flags,
        attrs: kept,
    }
}

/// The (type, value) attributes of a message's tail.
fn attrs(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        if len < 4 || len > buf.len() {
            break;
        }
        // The top bits of the type are the nested and byte-order flags.
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        out.push((kind, &buf[4..len]));
        buf = &buf[aligned(len).min(buf.len())..];
    }
    out
}

fn ifinfo(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut body = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
    body.extend_from_slice(&index.to_ne_bytes());
    body.extend_from_slice(&flags.to_ne_bytes());
    body.extend_from_slice(&change.to_ne_bytes());
    body
}

fn attr(body: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    body.extend_from_slice(&(len as u16).to_ne_bytes());
    body.extend_from_slice(&kind.to_ne_bytes());
    body.extend_from_slice(value);
    body.resize(aligned(body.len()), 0);
}

fn c_string(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn aligned(len: usize) -> usize {
    (len + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_with_padding() {
        let mut body = Vec::new();
        attr(&mut body, IFLA_IFNAME, &c_string("eth0"));
        attr(&mut body, IFLA_NET_NS_FD, &7u32.to_ne_bytes());
        assert_eq!(body.len(), 8 + 4 + 8);
        let got = attrs(&body);
        assert_eq!(got[0], (IFLA_IFNAME, &b"eth0\0"[..]));
        assert_eq!(got[1], (IFLA_NET_NS_FD, &7u32.to_ne_bytes()[..]));
    }

    #[test]
    fn an_error_carries_the_kernels_message() {
        // errno, the capped request header, then NLMSGERR_ATTR_MSG.
        let mut payload = (-libc::EEXIST).to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0u8; HEADER]);
        attr(&mut payload, NLMSGERR_ATTR_MSG, &c_string("name in use"));
        let e = ack(NLM_F_ACK_TLVS | NLM_F_CAPPED, &payload).unwrap_err();
        assert_eq!(e.raw_os_error(), None);
        assert!(
            e.to_string()
                .ends_with("File exists (os error 17): name in use"),
            "{e}"
        );
        assert!(ack(0, &0i32.to_ne_bytes()).is_ok());
    }

    #[test]
    fn only_permanent_global_addresses_are_portable() {
        let mut p = vec![libc::AF_INET as u8, 24, libc::IFA_F_PERMANENT as u8, 0];
        p.extend_from_slice(&3u32.to_ne_bytes());
        attr(&mut p, IFA_LOCAL, &[10, 0, 0, 1]);
        attr(&mut p, 6, &[0; 16]); // IFA_CACHEINFO: not kept
        let a = address(&p);
        assert!(a.portable());
        assert_eq!(a.to_string(), "10.0.0.1/24");
        assert_eq!(a.attrs, vec![(IFA_LOCAL, vec![10, 0, 0, 1])]);
        p[3] = libc::RT_SCOPE_HOST;
        assert!(!address(&p).portable());
    }
}
