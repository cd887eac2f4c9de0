//! A blocking face on etcd-client: one current-thread runtime per process (a plugin
//! call is a short sequence of requests), the whole call — connecting, name resolution
//! and every request — bounded by one deadline, `timeoutMs` after connecting starts,
//! each request given what is left; and errors as CNI errors — code 11 ("try again later") whenever the store
//! cannot answer now, so a runtime retries instead of giving up.

use std::future::Future;
use std::time::{Duration, Instant};

use etcd_client::{Certificate, Client, ConnectOptions, GetOptions, Identity, TlsOptions, Txn, TxnOp, TxnOpResponse};
use tokio::runtime::Runtime;
use tonic::transport::Endpoint;
use underlay::cni::{CniError, code};

use crate::conf::EtcdConf;

/// The longest one try of a request may take (see `Etcd::block`).
const ATTEMPT: Duration = Duration::from_millis(1000);

/// One key as read.
#[derive(Debug, Clone)]
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
    pub mod_revision: i64,
}

pub struct Etcd {
    /// Always `Some` until dropped (then shut down without waiting for blocking work).
    rt: Option<Runtime>,
    /// When the whole call must have answered.
    deadline: Instant,
    /// Each request gets the whole timeout again (an operator's long walk over the
    /// store, not a CNI call).
    per_request: bool,
    client: Client,
    timeout: Duration,
    endpoints: String,
    /// How to reach each member, and which one `client` talks to.
    members: Members,
}

/// One connection to one member at a time: a balanced channel would open an HTTP/2
/// connection to every member for each short CNI call (memory, and work on every
/// member); when the member cannot answer, the next one is tried.
struct Members {
    urls: Vec<String>,
    current: usize,
    opts: ConnectOptions,
    tls: Option<TlsOptions>,
}

impl Members {
    /// A client of member `i`, connected within `limit`.
    async fn connect(&self, i: usize, limit: Duration) -> Result<Client, etcd_client::Error> {
        let url = &self.urls[i % self.urls.len()];
        let uri: tonic::transport::Uri = url.parse()?;
        let mut endpoint = Endpoint::from(uri).connect_timeout(limit).timeout(ATTEMPT.min(limit));
        if url.starts_with("https://") {
            endpoint = endpoint.tls_config(self.tls.clone().unwrap_or_default())?;
        }
        let channel = endpoint.connect().await?;
        Client::from_channel(etcd_client::Channel::Tonic(channel), Some(self.opts.clone())).await
    }
}

fn read(key: &str, path: &std::path::Path) -> Result<Vec<u8>, CniError> {
    underlay::safe_read::read_config_file(path, &format!("ipam.etcd.{key}"), underlay::safe_read::CONFIG_FILE_CAP)
}

/// The chain of causes under an error (a TLS alert under "transport error").
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut last = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if text != last {
            out += &format!(": {text}");
        }
        last = text;
        cur = c.source();
    }
    out
}

/// What an etcd-client error means for the caller.
fn classify(endpoints: &str, what: &str, e: etcd_client::Error) -> CniError {
    use etcd_client::Error as E;
    use tonic::Code::*;
    match &e {
        E::GRpcStatus(s) if matches!(s.code(), Unauthenticated | PermissionDenied) => CniError::config(format!(
            "etcd at {endpoints} refused {what}: {} (check ipam.etcd's credentials)",
            s.message()
        )),
        E::GRpcStatus(s) if s.code() == InvalidArgument => {
            CniError::io(format!("etcd refused {what}: {}", s.message()))
        }
        E::GRpcStatus(s) => {
            CniError::try_again(format!("etcd at {endpoints} could not {what}: {}{}", s.message(), causes(s)))
        }
        E::TransportError(_) | E::IoError(_) | E::EndpointError(_) => {
            CniError::try_again(format!("cannot reach etcd at {endpoints} to {what}: {e}{}", causes(&e)))
        }
        E::InvalidUri(_) => CniError::config(format!("ipam.etcd.endpoints: {e}")),
        _ => CniError::io(format!("etcd at {endpoints}: {what}: {e}")),
    }
}

impl Etcd {
    /// Connects for a long-lived user (an operator's command, a benchmark):
    /// `timeoutMs` bounds each request, not all of them.
    pub fn connect(conf: &EtcdConf) -> Result<Etcd, CniError> {
        let mut etcd = Etcd::connect_by(conf, Instant::now() + conf.timeout())?;
        etcd.per_request = true;
        Ok(etcd)
    }

    /// Connects, and makes every later request of this client answer by `deadline`.
    pub fn connect_by(conf: &EtcdConf, deadline: Instant) -> Result<Etcd, CniError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CniError::io(format!("start the etcd client: {e}")))?;
        let timeout = conf.timeout();
        let left = deadline.saturating_duration_since(Instant::now());
        // Without a leader a member cannot answer; fail at once instead of waiting.
        let mut opts = ConnectOptions::new().with_require_leader(true);
        if let Some(user) = &conf.username {
            opts = opts.with_user(user.clone(), conf.password()?.unwrap_or_default());
        }
        let mut tls = None;
        if conf.ca_file.is_some() || conf.cert_file.is_some() {
            let mut t = TlsOptions::new();
            if let Some(ca) = &conf.ca_file {
                t = t.ca_certificate(Certificate::from_pem(read("caFile", ca)?));
            }
            if let (Some(cert), Some(key)) = (&conf.cert_file, &conf.key_file) {
                t = t.identity(Identity::from_pem(read("certFile", cert)?, read("keyFile", key)?));
            }
            tls = Some(t);
        }
        let endpoints = conf.endpoints.join(",");
        // Members in turn from one picked per process, so calls spread over the cluster.
        let first = std::process::id() as usize % conf.endpoints.len().max(1);
        let mut members = Members { urls: conf.endpoints.clone(), current: first, opts, tls };
        let connecting = async {
            let mut last = None;
            for k in 0..members.urls.len() {
                let i = (first + k) % members.urls.len();
                let limit = deadline.saturating_duration_since(Instant::now());
                match members.connect(i, limit).await {
                    Ok(c) => return Ok((i, c)),
                    // A malformed endpoint is the operator's to fix: say so at once.
                    Err(e @ etcd_client::Error::InvalidUri(_)) => return Err(e),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| etcd_client::Error::InvalidArgs("no endpoints".into())))
        };
        // A runtime dropped while resolving a name waits for the resolver thread:
        // shut it down without waiting, so a slow resolver cannot outlast the deadline.
        let give_up = |rt: Runtime| rt.shutdown_background();
        let client = match rt.block_on(async { tokio::time::timeout(left, connecting).await }) {
            Ok(Ok((i, c))) => {
                members.current = i;
                c
            }
            Ok(Err(e)) => {
                give_up(rt);
                return Err(classify(&endpoints, "connect", e));
            }
            Err(_) => {
                give_up(rt);
                return Err(CniError::try_again(format!(
                    "cannot reach etcd at {endpoints} within {} ms",
                    timeout.as_millis()
                )));
            }
        };
        Ok(Etcd { rt: Some(rt), deadline, per_request: false, client, timeout, endpoints, members })
    }

    /// Runs one request, made afresh by `attempt` each try: what fails for now (no
    /// leader during an election, a member just gone) is retried until the timeout.
    /// No try waits longer than `ATTEMPT`: a request a follower forwarded to a leader
    /// that just died is never answered, and a fresh try after the election is.
    /// (Every write here is a compare-and-set, so a try that lands late is harmless.)
    fn block<T, Fut>(&mut self, what: &str, mut attempt: impl FnMut(Client) -> Fut) -> Result<T, CniError>
    where
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = if self.per_request { Instant::now() + self.timeout } else { self.deadline };
        let mut pause = Duration::from_millis(5);
        let mut last = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(last.unwrap_or_else(|| {
                    CniError::try_again(format!(
                        "etcd at {} did not {what} before the call's deadline, timeoutMs {} (has it lost its quorum?)",
                        self.endpoints,
                        self.timeout.as_millis()
                    ))
                }));
            }
            let fut = attempt(self.client.clone());
            // The timer must be made inside the runtime.
            let rt = self.rt.as_ref().expect("a runtime until dropped");
            let err = match rt.block_on(async { tokio::time::timeout(left.min(ATTEMPT), fut).await }) {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => classify(&self.endpoints, what, e),
                Err(_) => CniError::try_again(format!(
                    "etcd at {} did not {what} before the call's deadline, timeoutMs {} (has it lost its quorum?)",
                    self.endpoints,
                    self.timeout.as_millis()
                )),
            };
            if err.code != code::TRY_AGAIN_LATER {
                return Err(err);
            }
            last = Some(err);
            std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
            pause = (pause * 2).min(Duration::from_millis(200));
            self.next_member(deadline);
        }
    }

    /// Moves to the next member that connects before `deadline` (this one could not
    /// answer: gone, partitioned, or without a leader); stays when none does.
    fn next_member(&mut self, deadline: Instant) {
        let n = self.members.urls.len();
        let rt = self.rt.as_ref().expect("a runtime until dropped");
        for k in 1..n {
            let i = (self.members.current + k) % n;
            let limit = deadline.saturating_duration_since(Instant::now()).min(ATTEMPT);
            if limit.is_zero() {
                return;
            }
            let connecting = self.members.connect(i, limit);
            if let Ok(Ok(c)) = rt.block_on(async { tokio::time::timeout(limit, connecting).await }) {
                (self.client, self.members.current) = (c, i);
                return;
            }
        }
    }

    /// Every key under `prefix`, in key order.
    pub fn list(&mut self, prefix: &str, keys_only: bool) -> Result<Vec<Kv>, CniError> {
        let mut opts = GetOptions::new().with_prefix();
        if keys_only {
            opts = opts.with_keys_only();
        }
        let resp = self.block(&format!("list {prefix}"), |mut c| {
            let (p, o) = (prefix.to_string(), opts.clone());
            async move { c.get(p, Some(o)).await }
        })?;
        Ok(resp.kvs().iter().map(kv).collect())
    }

    /// The keys from `start` up to (not including) `end`.
    pub fn range(&mut self, what: &str, start: &str, end: &str) -> Result<Vec<Kv>, CniError> {
        let opts = GetOptions::new().with_range(end).with_keys_only();
        let resp = self.block(what, |mut c| {
            let (k, o) = (start.to_string(), opts.clone());
            async move { c.get(k, Some(o)).await }
        })?;
        Ok(resp.kvs().iter().map(kv).collect())
    }

    pub fn get(&mut self, key: &str) -> Result<Option<Kv>, CniError> {
        let resp = self.block(&format!("read {key}"), |mut c| {
            let k = key.to_string();
            async move { c.get(k, None).await }
        })?;
        Ok(resp.kvs().first().map(kv))
    }

    /// Several ranges read at one revision, in one round trip: the keys under each
    /// `(prefix, keys_only)`.
    pub fn read(&mut self, what: &str, ranges: &[(String, bool)]) -> Result<Vec<Vec<Kv>>, CniError> {
        Ok(self.read_at(what, ranges)?.1)
    }

    /// As `read`, with the store's revision the reads saw.
    pub fn read_at(&mut self, what: &str, ranges: &[(String, bool)]) -> Result<(i64, Vec<Vec<Kv>>), CniError> {
        let ops: Vec<TxnOp> = ranges
            .iter()
            .map(|(prefix, keys_only)| {
                let mut o = GetOptions::new().with_prefix();
                if *keys_only {
                    o = o.with_keys_only();
                }
                TxnOp::get(prefix.clone(), Some(o))
            })
            .collect();
        let (_, reads, revision) = self.txn_reading(what, Txn::new().and_then(ops))?;
        Ok((revision, reads))
    }

    /// Runs `txn`; whether its conditions held. A retried transaction may have been
    /// applied by the try whose answer was lost: callers check what they find.
    pub fn txn(&mut self, what: &str, txn: Txn) -> Result<bool, CniError> {
        let resp = self.block(what, |mut c| {
            let t = txn.clone();
            async move { c.txn(t).await }
        })?;
        Ok(resp.succeeded())
    }

    /// Runs `txn`; whether its conditions held, what the read operations of the
    /// branch taken found (one list of keys per read, in order), and the store's
    /// revision after it.
    pub fn txn_reading(&mut self, what: &str, txn: Txn) -> Result<(bool, Vec<Vec<Kv>>, i64), CniError> {
        let resp = self.block(what, |mut c| {
            let t = txn.clone();
            async move { c.txn(t).await }
        })?;
        let reads = resp
            .op_responses()
            .into_iter()
            .filter_map(|r| match r {
                TxnOpResponse::Get(g) => Some(g.kvs().iter().map(kv).collect()),
                _ => None,
            })
            .collect();
        Ok((resp.succeeded(), reads, resp.header().map_or(0, |h| h.revision())))
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn kv(k: &etcd_client::KeyValue) -> Kv {
    Kv { key: String::from_utf8_lossy(k.key()).into_owned(), value: k.value().to_vec(), mod_revision: k.mod_revision() }
}
