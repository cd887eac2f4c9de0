//! `dhcp daemon`: listens on a Unix socket, acquires leases for ADD, keeps one
//! `keeper` thread per attachment, releases on DEL and GC. Every attachment is a
//! file in the state directory; on start the daemon resumes all of them, so a daemon
//! killed with SIGKILL and started again keeps renewing what it had.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use underlay::cni::{Attachment, CniError, code};
use underlay_linux::Netns;

use crate::client::{self, Answer};
use crate::keeper::{self, Shared};
use crate::lease::{Lease, now};
use crate::record::{Key, Record, Store};
use crate::rpc::{Request, Response};

/// Where leases are kept unless `--state-dir` says otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/cni/dhcp";

struct Entry {
    record: Shared,
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

pub struct Daemon {
    store: Store,
    entries: Mutex<HashMap<Key, Entry>>,
    /// One lock per attachment: ADD, DEL and GC of the same attachment take turns, so
    /// two concurrent ADDs never start two keepers (one of them orphaned, renewing a
    /// lease nobody releases), while different attachments proceed in parallel.
    busy: Mutex<HashMap<Key, Arc<Mutex<()>>>>,
}

/// Runs the daemon until the process is killed.
pub fn serve(socket: &Path, state: &Path) -> io::Result<()> {
    let store = Store::open(state)?;
    let daemon = Arc::new(Daemon { store, entries: Mutex::new(HashMap::new()), busy: Mutex::new(HashMap::new()) });
    for r in daemon.store.load()? {
        eprintln!(
            "dhcp daemon: resume {:?} ({})",
            r.key,
            r.lease.as_ref().map_or("lost".into(), |l| l.address.to_string())
        );
        daemon.start(r);
    }
    let listener = listen(socket)?;
    eprintln!("dhcp daemon: listening on {}", socket.display());
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let d = Arc::clone(&daemon);
        std::thread::spawn(move || d.serve_one(conn));
    }
    Ok(())
}

fn listen(socket: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket file nobody answers on is left over from a killed daemon.
    if UnixStream::connect(socket).is_ok() {
        return Err(io::Error::other(format!("another daemon already listens on {}", socket.display())));
    }
    match std::fs::remove_file(socket) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let l = UnixListener::bind(socket)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

impl Daemon {
    fn turn(&self, key: &Key) -> Arc<Mutex<()>> {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        // Forget locks nobody holds, so the map does not grow with every container.
        busy.retain(|_, l| Arc::strong_count(l) > 1);
        Arc::clone(busy.entry(key.clone()).or_default())
    }

    fn start(&self, record: Record) {
        let key = record.key.clone();
        let shared: Shared = Arc::new(Mutex::new(record));
        let (stop, rx) = channel();
        let (r, store) = (Arc::clone(&shared), self.store.clone());
        let thread = std::thread::spawn(move || keeper::run(r, store, rx));
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).insert(key, Entry { record: shared, stop, thread });
    }

    /// The kept record, without holding the map while its keeper may be mid-exchange.
    fn record(&self, key: &Key) -> Option<Shared> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).get(key).map(|e| Arc::clone(&e.record))
    }

    /// Stops the keeper and hands back its record.
    fn stop(&self, key: &Key) -> Option<Record> {
        let entry = self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(key)?;
        drop(entry.stop);
        let _ = entry.thread.join();
        let r = entry.record.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Some(r)
    }

    fn serve_one(&self, conn: UnixStream) {
        let mut line = String::new();
        if BufReader::new(&conn).read_line(&mut line).is_err() {
            return;
        }
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(req) => match self.handle(req) {
                Ok(lease) => Response::Ok(lease),
                Err(e) => Response::Err(e),
            },
            Err(e) => Response::Err(CniError::decode(format!("dhcp daemon: bad request: {e}"))),
        };
        let mut out = serde_json::to_vec(&response).expect("responses serialize");
        out.push(b'\n');
        let _ = (&conn).write_all(&out);
    }

    fn handle(&self, req: Request) -> Result<Option<Lease>, CniError> {
        match req {
            Request::Add { key, netns, client_id, hostname, request, timeout_ms } => {
                self.add(key, netns, client_id, hostname, request, Duration::from_millis(timeout_ms)).map(Some)
            }
            Request::Del { key } => self.del(&key).map(|()| None),
            Request::Check { key } => self.check(&key).map(Some),
            Request::Status => Ok(None),
            Request::Gc { network, valid } => self.gc(&network, &valid).map(|()| None),
        }
    }

    fn add(
        &self,
        key: Key,
        netns_path: PathBuf,
        client_id: Vec<u8>,
        hostname: Option<String>,
        request: Vec<u8>,
        timeout: Duration,
    ) -> Result<Lease, CniError> {
        let deadline = Instant::now() + timeout;
        if !key.is_valid() {
            return Err(CniError::config(format!("bad attachment {key:?}")));
        }
        let turn = self.turn(&key);
        let _turn = turn.lock().unwrap_or_else(|p| p.into_inner());
        // A repeated ADD for a live attachment gets the lease it already has.
        if let Some(shared) = self.record(&key) {
            let r = shared.lock().unwrap_or_else(|p| p.into_inner());
            // Only for the same namespace: a container ID reused for a new namespace
            // (a runtime that crashed before DEL) gets a fresh exchange there.
            if let Some(l) = r.lease.as_ref().filter(|l| l.is_live(now()) && r.netns == netns_path) {
                return Ok(l.clone());
            }
        }
        self.stop(&key);
        let netns = Netns::open(&netns_path).map_err(|e| CniError::env(format!("open CNI_NETNS: {e}")))?;
        let mac = netns
            .netlink()
            .and_then(|mut nl| {
                let link = nl.link(&key.ifname)?;
                nl.set_up(link.index, true)?;
                Ok(link.mac)
            })
            .map_err(|e| CniError::kernel(format!("bring up {} in {}: {e}", key.ifname, netns_path.display())))?
            .ok_or_else(|| CniError::kernel(format!("{} has no MAC address", key.ifname)))?;
        let mut record = Record {
            key,
            netns: netns_path,
            mac: mac.0,
            client_id,
            hostname,
            request,
            lease: None,
            last_address: None,
        };
        record.last_address = self.store.recall(&record.client_id);
        let sock = client::open(&netns, &record.key.ifname)
            .map_err(|e| CniError::kernel(format!("open DHCP socket on {}: {e}", record.key.ifname)))?;
        let secs = timeout.as_secs_f64();
        let lease = match client::acquire(&sock, &record.identity(), record.last_address, deadline) {
            Ok(Answer::Ack(l)) => l,
            Ok(Answer::Nak) => {
                return Err(CniError::try_again(format!("the DHCP server refused {} (NAK)", record.key.ifname)));
            }
            Ok(Answer::Silence) => {
                return Err(CniError::try_again(format!(
                    "no DHCP server leased an address on {} within {secs} s",
                    record.key.ifname
                )));
            }
            Err(e) => return Err(CniError::io(format!("DHCP on {}: {e}", record.key.ifname))),
        };
        record.lease = Some(lease.clone());
        record.last_address = Some(lease.address.addr());
        if let Err(e) = self.store.save(&record) {
            // Without a saved record a restart would forget to renew: give it back.
            let _ = client::release(&sock, &record.identity(), &lease, false);
            return Err(CniError::io(format!("save lease of {:?}: {e}", record.key)));
        }
        self.store.remember(&record.client_id, lease.address.addr());
        self.start(record);
        Ok(lease)
    }

    fn del(&self, key: &Key) -> Result<(), CniError> {
        let turn = self.turn(key);
        let _turn = turn.lock().unwrap_or_else(|p| p.into_inner());
        let record = match self.stop(key) {
            Some(r) => r,
            // DEL is idempotent: nothing kept for it is success.
            None => return Ok(()),
        };
        let mut errors = Vec::new();
        // Without the namespace (container gone) nothing can be sent: the server's
        // lease simply runs out.
        if let (Some(lease), Ok(netns)) = (&record.lease, Netns::open(&record.netns)) {
            let has = has_address(&netns, &key.ifname, lease);
            let sent =
                client::open(&netns, &key.ifname).and_then(|s| client::release(&s, &record.identity(), lease, has));
            if let Err(e) = sent {
                errors.push(format!("send DHCPRELEASE for {}: {e}", lease.address));
            }
        }
        if let Err(e) = self.store.remove(key) {
            errors.push(format!("remove lease record: {e}"));
        }
        if errors.is_empty() { Ok(()) } else { Err(CniError::io(errors.join("; "))) }
    }

    fn check(&self, key: &Key) -> Result<Lease, CniError> {
        let fail = |m: String| CniError::new(code::CHECK_FAILED, m);
        let shared = self.record(key).ok_or_else(|| fail(format!("no lease is kept for {key:?}")))?;
        let r = shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let lease =
            r.lease.filter(|l| l.is_live(now())).ok_or_else(|| fail(format!("the lease of {key:?} is lost")))?;
        let netns = Netns::open(&r.netns).map_err(|e| fail(format!("open {}: {e}", r.netns.display())))?;
        let present = has_address(&netns, &key.ifname, &lease);
        if !present {
            return Err(fail(format!("leased address {} is not on {}", lease.address, key.ifname)));
        }
        Ok(lease)
    }

    fn gc(&self, network: &str, valid: &[Attachment]) -> Result<(), CniError> {
        let stale: Vec<Key> = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter(|k| k.network == network)
            .filter(|k| !valid.iter().any(|a| a.container_id == k.container_id && a.ifname == k.ifname))
            .cloned()
            .collect();
        let errors: Vec<String> = stale.iter().filter_map(|k| self.del(k).err().map(|e| e.msg)).collect();
        if errors.is_empty() { Ok(()) } else { Err(CniError::io(errors.join("; "))) }
    }
}

/// Whether `ifname` in `netns` carries the leased address.
fn has_address(netns: &Netns, ifname: &str, lease: &Lease) -> bool {
    netns
        .netlink()
        .and_then(|mut nl| {
            let link = nl.link(ifname)?;
            nl.addresses(Some(link.index))
        })
        .is_ok_and(|addrs| addrs.iter().any(|a| a.net == IpNet::V4(lease.address)))
}
