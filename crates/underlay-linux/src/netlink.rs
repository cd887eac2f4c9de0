//! A blocking rtnetlink socket: send one request, collect its replies, map errors.
//! Messages come from rtnetlink's builders; no async runtime is involved. A socket is
//! bound to the network namespace of the thread that opened it, for its whole life.

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::error::{Errno, Error, Result};

/// Flag on an error message saying extended-ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// The extended-ack attribute carrying the kernel's message text.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// A dump interrupted by a concurrent change is retried this often before giving up.
const DUMP_RETRIES: usize = 10;

pub struct Netlink {
    socket: Socket,
    seq: u32,
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn new() -> Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| Error::from(e).context("open netlink socket"))?;
        socket.bind_auto().map_err(|e| Error::from(e).context("bind netlink socket"))?;
        // Errors carry the kernel's explanation and only the request header, not its body.
        socket.set_ext_ack(true).map_err(|e| Error::from(e).context("enable netlink extended ack"))?;
        socket.set_cap_ack(true).map_err(|e| Error::from(e).context("enable netlink capped ack"))?;
        socket.set_netlink_get_strict_chk(true).ok();
        socket.connect(&SocketAddr::new(0, 0)).map_err(|e| Error::from(e).context("connect netlink socket"))?;
        Ok(Netlink { socket, seq: 0 })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(|e| Error::from(e).context("send netlink request"))?;
        Ok(self.seq)
    }

    /// Sends a request that changes something (`NLM_F_ACK` is added) and waits for the
    /// kernel's answer. Returns any messages it sent back before the ack.
    pub fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<Vec<RouteNetlinkMessage>> {
        let seq = self.send(msg, flags | NLM_F_ACK)?;
        self.collect(seq).map(|(msgs, _)| msgs)
    }

    /// Dumps a table. A dump the kernel marks inconsistent (something changed while it
    /// was read) is read again.
    pub fn dump(&mut self, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>> {
        for _ in 0..DUMP_RETRIES {
            let seq = self.send(msg.clone(), NLM_F_DUMP)?;
            let (msgs, interrupted) = self.collect(seq)?;
            if !interrupted {
                return Ok(msgs);
            }
        }
        Err(Error::errno(Errno::EINTR, None).context("netlink dump kept changing while being read"))
    }

    fn collect(&mut self, seq: u32) -> Result<(Vec<RouteNetlinkMessage>, bool)> {
        let mut out = Vec::new();
        let mut interrupted = false;
        loop {
            let (buf, _) = self.socket.recv_from_full().map_err(|e| Error::from(e).context("receive netlink reply"))?;
            let mut offset = 0;
            while offset < buf.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..])
                    .map_err(|e| Error::new("decode netlink reply", e.to_string()))?;
                let len = msg.header.length as usize;
                offset += len.div_ceil(4) * 4;
                if len == 0 {
                    break;
                }
                if msg.header.sequence_number != seq {
                    continue; // a late reply to an earlier request
                }
                interrupted |= msg.header.flags & NLM_F_DUMP_INTR != 0;
                let flags = msg.header.flags;
                match msg.payload {
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    NetlinkPayload::Done(_) => return Ok((out, interrupted)),
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok((out, interrupted)),
                        Some(code) => {
                            let text = (flags & NLM_F_ACK_TLVS != 0).then(|| ext_ack_message(&e.header)).flatten();
                            return Err(Error::errno(Errno::from_raw(-code.get()), text));
                        }
                    },
                    _ => {}
                }
            }
        }
    }
}

/// The kernel's message from the extended-ack attributes after the (capped) header.
fn ext_ack_message(payload: &[u8]) -> Option<String> {
    const HEADER: usize = 16;
    let mut rest = payload.get(HEADER..)?;
    while rest.len() >= 4 {
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &rest[4..len];
            let text = text.split(|b| *b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        rest = rest.get(len.div_ceil(4) * 4..)?;
    }
    None
}
