//! The lab's servers and their clients. Every lab host runs `underlay __lab-serve`:
//! on the given ports it answers an HTTP GET with who it saw connecting (so a check can
//! tell NAT from none), and on two fixed ports it sinks and echoes for `lab bench`.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Deserialize;
use underlay_linux::Netns;

/// Reads until the peer closes, then answers how many bytes came (8 bytes, LE).
pub const SINK_PORT: u16 = 5201;
/// Sends every byte back.
pub const ECHO_PORT: u16 = 5202;

/// Serves until killed.
pub fn serve(ports: &[u16]) -> Result<()> {
    let mut threads = Vec::new();
    for &port in ports.iter().chain(&[SINK_PORT, ECHO_PORT]) {
        // Dual stack where the namespace has IPv6, else IPv4 only.
        let listener = TcpListener::bind(SocketAddr::new(IpAddr::from([0u8; 16]), port))
            .or_else(|_| TcpListener::bind(SocketAddr::new(IpAddr::from([0u8; 4]), port)))
            .with_context(|| format!("listen on {port}"))?;
        threads.push(std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = match port {
                        SINK_PORT => sink(conn),
                        ECHO_PORT => echo(conn),
                        _ => who(conn),
                    };
                });
            }
        }));
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn who(mut conn: TcpStream) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let body = serde_json::json!({"you": unmapped(conn.peer_addr()?), "me": unmapped(conn.local_addr()?)}).to_string();
    write!(conn, "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

/// A v4 peer of a dual-stack socket shows as ::ffff:a.b.c.d.
fn unmapped(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(|v4| SocketAddr::new(v4.into(), a.port())).unwrap_or(a),
        IpAddr::V4(_) => a,
    }
}

fn sink(mut conn: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    conn.write_all(&total.to_le_bytes())
}

fn echo(mut conn: TcpStream) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut buf = [0u8; 64];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n])?;
    }
}

/// What a lab server saw of a connection.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Seen {
    /// The client, as the server saw it.
    pub you: SocketAddr,
}

/// `GET /` from inside `from` to `ip:port`: what the server saw, or None if nothing
/// answered within `timeout`.
pub fn get(from: &Netns, ip: IpAddr, port: u16, timeout: Duration) -> Result<Option<Seen>> {
    from.run(move || -> std::io::Result<Option<Seen>> {
        let mut s = match TcpStream::connect_timeout(&SocketAddr::new(ip, port), timeout) {
            Ok(s) => s,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::HostUnreachable) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        s.set_read_timeout(Some(timeout))?;
        write!(s, "GET / HTTP/1.0\r\nHost: {ip}:{port}\r\n\r\n")?;
        let mut reply = String::new();
        s.read_to_string(&mut reply)?;
        let body = reply.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        Ok(serde_json::from_str(body).ok())
    })?
    .with_context(|| format!("GET http://{ip}:{port}/"))
}

/// Waits until a server in `ns` listens on `port` (on loopback).
pub fn wait_listening(ns: &Netns, port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let up = ns.run(move || TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).is_ok())?;
        if up {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    anyhow::bail!("the lab server in {} never listened on {port}", ns.path().display())
}

/// Streams to a sink for `secs`: bits per second as the receiver counted them.
pub fn throughput(from: &Netns, ip: IpAddr, secs: f64) -> Result<f64> {
    from.run(move || -> std::io::Result<f64> {
        let mut s = TcpStream::connect_timeout(&SocketAddr::new(ip, SINK_PORT), Duration::from_secs(2))?;
        let buf = vec![0x5au8; 128 * 1024];
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < secs {
            s.write_all(&buf)?;
        }
        s.shutdown(std::net::Shutdown::Write)?;
        let mut count = [0u8; 8];
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.read_exact(&mut count)?;
        Ok(u64::from_le_bytes(count) as f64 * 8.0 / start.elapsed().as_secs_f64())
    })?
    .with_context(|| format!("stream to {ip}:{SINK_PORT}"))
}

/// `rounds` one-byte round trips to an echo server: each one's time.
pub fn round_trips(from: &Netns, ip: IpAddr, rounds: usize) -> Result<Vec<Duration>> {
    from.run(move || -> std::io::Result<Vec<Duration>> {
        let mut s = TcpStream::connect_timeout(&SocketAddr::new(ip, ECHO_PORT), Duration::from_secs(2))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut times = Vec::with_capacity(rounds);
        let mut b = [0u8; 1];
        for _ in 0..rounds {
            let t = Instant::now();
            s.write_all(b"x")?;
            s.read_exact(&mut b)?;
            times.push(t.elapsed());
        }
        Ok(times)
    })?
    .with_context(|| format!("round trips to {ip}:{ECHO_PORT}"))
}
