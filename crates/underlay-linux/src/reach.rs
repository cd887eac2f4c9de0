//! Reachability probes from inside a namespace, over TCP: a refused connection proves
//! the peer answered just as well as an accepted one, so no listener is needed.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::error::{Context, Result};
use crate::netns::Netns;

/// Whether a TCP handshake to `ip:port` from `from` got an answer (accept or refuse)
/// within `timeout`.
pub fn tcp_reachable(from: &Netns, ip: IpAddr, port: u16, timeout: Duration) -> Result<bool> {
    from.run(|| match TcpStream::connect_timeout(&SocketAddr::new(ip, port), timeout) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
    })
}

/// A one-shot echo server listening in `netns`; returns the port.
pub fn echo_server(netns: &Netns, ip: IpAddr) -> Result<(u16, std::thread::JoinHandle<()>)> {
    let listener = netns.run(|| TcpListener::bind(SocketAddr::new(ip, 0)))?.context("listen")?;
    let port = listener.local_addr().context("read listening port")?.port();
    let handle = std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            if let Ok(n) = s.read(&mut buf) {
                let _ = s.write_all(&buf[..n]);
            }
        }
    });
    Ok((port, handle))
}

/// Connects from `from` to `ip:port`, sends `msg` and returns what came back.
pub fn echo(from: &Netns, ip: IpAddr, port: u16, msg: &[u8], timeout: Duration) -> Result<Vec<u8>> {
    from.run(|| -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect_timeout(&SocketAddr::new(ip, port), timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(msg)?;
        let mut out = vec![0u8; msg.len()];
        s.read_exact(&mut out)?;
        Ok(out)
    })?
    .with_context(|| format!("echo via {ip}:{port}"))
}
