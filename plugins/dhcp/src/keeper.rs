//! The thread that keeps one attachment's lease alive: renew at T1 (unicast), rebind
//! at T2 (broadcast), and on a lost lease (NAK or expiry) take the address off the
//! interface and ask again every `RETRY` until a server answers, putting the new
//! address back.

use std::net::Ipv4Addr;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use underlay_linux::Netns;
use underlay_linux::addr::AddressOptions;

use crate::client::{self, Answer};
use crate::lease::{Lease, now};
use crate::record::{Record, Store};

/// How long to wait between attempts when no server answers.
const RETRY: Duration = Duration::from_secs(10);
/// How long one renew/rebind/discover exchange may take.
const EXCHANGE: Duration = Duration::from_secs(8);

pub type Shared = Arc<Mutex<Record>>;

enum Step {
    Renew,
    Rebind,
    Lost,
    Acquire,
}

fn next(lease: Option<&Lease>, at: u64) -> (u64, Step) {
    match lease {
        None => (at, Step::Acquire),
        Some(l) if at < l.renew_at() => (l.renew_at(), Step::Renew),
        Some(l) if at < l.rebind_at() => (at, Step::Renew),
        Some(l) if at < l.expires_at() => (at, Step::Rebind),
        Some(_) => (at, Step::Lost),
    }
}

/// Runs until `stop` fires or is dropped, or the container's namespace is gone.
pub fn run(record: Shared, store: Store, stop: Receiver<()>) {
    let mut pause = Duration::ZERO;
    loop {
        let (when, step) = {
            let r = record.lock().unwrap_or_else(|p| p.into_inner());
            next(r.lease.as_ref(), now())
        };
        let wait = Duration::from_secs(when.saturating_sub(now())).max(pause);
        match stop.recv_timeout(wait) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let mut r = record.lock().unwrap_or_else(|p| p.into_inner());
        let netns = match Netns::open(&r.netns) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("dhcp daemon: {:?}: namespace gone ({e}); stop renewing", r.key);
                let _ = store.remove(&r.key);
                return;
            }
        };
        pause = match act(&mut r, &netns, step) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("dhcp daemon: {:?}: {e}", r.key);
                RETRY
            }
        };
        if let Err(e) = store.save(&r) {
            eprintln!("dhcp daemon: {:?}: save lease: {e}", r.key);
        }
    }
}

/// One step; returns the least time to wait before the next.
fn act(r: &mut Record, netns: &Netns, step: Step) -> Result<Duration, String> {
    let id = r.identity();
    let sock = client::open(netns, &r.key.ifname).map_err(|e| format!("open DHCP socket on {}: {e}", r.key.ifname))?;
    let deadline = Instant::now() + EXCHANGE;
    match step {
        Step::Renew | Step::Rebind => {
            let lease = r.lease.clone().expect("renewing needs a lease");
            let answer = client::extend(&sock, &id, &lease, matches!(step, Step::Rebind), deadline)
                .map_err(|e| format!("renew {}: {e}", lease.address))?;
            match answer {
                Answer::Ack(new) => {
                    if new.address != lease.address {
                        swap_address(netns, &r.key.ifname, Some(lease.address.addr()), &new)?;
                    }
                    eprintln!("dhcp daemon: {:?}: renewed {} for {} s", r.key, new.address, new.lease_secs);
                    r.lease = Some(new);
                    Ok(Duration::ZERO)
                }
                Answer::Nak => {
                    lose(r, netns, "the server refused the renewal (NAK)")?;
                    Ok(Duration::ZERO)
                }
                // RFC 2131: wait half the time left to T2 (or expiry), at least 60 s
                // there; shortened here so short test leases stay observable.
                Answer::Silence => {
                    let until = if matches!(step, Step::Rebind) { lease.expires_at() } else { lease.rebind_at() };
                    Ok(Duration::from_secs((until.saturating_sub(now()) / 2).max(2)))
                }
            }
        }
        Step::Lost => {
            lose(r, netns, "the lease expired without a renewal")?;
            Ok(Duration::ZERO)
        }
        Step::Acquire => {
            match client::acquire(&sock, &id, r.last_address, deadline).map_err(|e| format!("acquire: {e}"))? {
                Answer::Ack(new) => {
                    swap_address(netns, &r.key.ifname, None, &new)?;
                    eprintln!("dhcp daemon: {:?}: leased {} again", r.key, new.address);
                    r.last_address = Some(new.address.addr());
                    r.lease = Some(new);
                    Ok(Duration::ZERO)
                }
                Answer::Nak | Answer::Silence => Ok(RETRY),
            }
        }
    }
}

/// A lost lease: the address leaves the interface so the container stops using an
/// address the server may give to someone else; asking again starts now.
fn lose(r: &mut Record, netns: &Netns, why: &str) -> Result<(), String> {
    eprintln!("dhcp daemon: {:?}: lease lost: {why}", r.key);
    if let Some(l) = r.lease.take() {
        r.last_address = Some(l.address.addr());
        let mut nl = netns.netlink().map_err(|e| e.to_string())?;
        if let Some(link) = nl.link_by_name(&r.key.ifname).map_err(|e| e.to_string())? {
            let _ = nl.del_address(link.index, IpNet::V4(l.address));
        }
    }
    Ok(())
}

fn swap_address(netns: &Netns, ifname: &str, old: Option<Ipv4Addr>, new: &Lease) -> Result<(), String> {
    let mut nl = netns.netlink().map_err(|e| e.to_string())?;
    let link = nl.link(ifname).map_err(|e| e.to_string())?;
    if let Some(old) = old {
        let _ = nl.del_address(
            link.index,
            IpNet::V4(ipnet::Ipv4Net::new(old, new.address.prefix_len()).expect("valid prefix")),
        );
    }
    match nl.add_address(link.index, IpNet::V4(new.address), AddressOptions::default()) {
        Err(e) if e.is(underlay_linux::error::Errno::EEXIST) => Ok(()),
        other => other.map_err(|e| format!("put {} on {ifname}: {e}", new.address)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_t1_t2_and_expiry() {
        let l = Lease {
            address: "10.0.0.2/24".parse().unwrap(),
            server: "10.0.0.1".parse().unwrap(),
            router: None,
            routes: vec![],
            dns: vec![],
            domain: None,
            search: vec![],
            mtu: None,
            lease_secs: 100,
            t1_secs: 50,
            t2_secs: 80,
            acquired: 1000,
        };
        assert!(matches!(next(Some(&l), 1010), (1050, Step::Renew)));
        assert!(matches!(next(Some(&l), 1060), (1060, Step::Renew)));
        assert!(matches!(next(Some(&l), 1090), (1090, Step::Rebind)));
        assert!(matches!(next(Some(&l), 1100), (1100, Step::Lost)));
        assert!(matches!(next(None, 5), (5, Step::Acquire)));
    }
}
