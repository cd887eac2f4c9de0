//! Announcements after Join, as the CNI plugins send them (`underlay_linux::announce`):
//! a gratuitous ARP per IPv4 address, an unsolicited neighbour advertisement per IPv6
//! one, so neighbours holding a stale MAC for a reused address update at once. dockerd
//! binds the container's namespace at the sandbox path and moves, renames and
//! configures the link only after Join has answered, so a thread waits for the link
//! (found by its MAC) to carry the addresses, then announces a few times, a second apart.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use underlay::MacAddr;
use underlay_linux::{Netlink, Netns};

const ROUNDS: u32 = 3;
const INTERVAL: Duration = Duration::from_secs(1);
/// How long dockerd may take to configure the link.
const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

/// Starts announcing `ips` of the link with `mac` in the sandbox at `sandbox` (Join's
/// `SandboxKey`). Best effort: the addresses work whether or not the LAN hears this.
pub fn after_join(sandbox: &str, mac: MacAddr, ips: Vec<IpAddr>) {
    if sandbox.is_empty() || ips.is_empty() {
        return;
    }
    let path = PathBuf::from(sandbox);
    let _ = std::thread::Builder::new().name("announce".into()).spawn(move || {
        let deadline = Instant::now() + WAIT;
        loop {
            match round(&path, mac, &ips) {
                Ok(true) => break,
                Ok(false) if Instant::now() < deadline => std::thread::sleep(POLL),
                // Never configured, or the container is gone already.
                _ => return,
            }
        }
        for _ in 1..ROUNDS {
            std::thread::sleep(INTERVAL);
            if !matches!(round(&path, mac, &ips), Ok(true)) {
                return;
            }
        }
    });
}

/// One round: `Ok(true)` when the link with `mac` carries every address and they were
/// announced; `Ok(false)` when it is not (yet) there or not configured.
fn round(path: &Path, mac: MacAddr, ips: &[IpAddr]) -> io::Result<bool> {
    // Docker 20.10 binds the namespace there only when runc has made it, after Join.
    if !path.exists() {
        return Ok(false);
    }
    let ns = Netns::open(path).map_err(|e| io::Error::other(e.to_string()))?;
    let ips = ips.to_vec();
    ns.run(move || -> io::Result<bool> {
        let other = |e: underlay_linux::Error| io::Error::other(e.to_string());
        let mut nl = Netlink::new().map_err(other)?;
        let Some(link) = nl.links().map_err(other)?.into_iter().find(|l| l.mac == Some(mac)) else { return Ok(false) };
        let have = nl.addresses(Some(link.index)).map_err(other)?;
        if !link.up || !ips.iter().all(|ip| have.iter().any(|a| a.net.addr() == *ip)) {
            return Ok(false);
        }
        for ip in &ips {
            underlay_linux::announce::address(link.index, mac, *ip)?;
        }
        Ok(true)
    })
    .map_err(|e| io::Error::other(e.to_string()))?
}
