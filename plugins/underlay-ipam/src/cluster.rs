//! A throwaway etcd cluster of real `etcd` processes (Debian's `etcd-server`), for
//! tests, benchmarks and the lab: members on one address (loopback, or a test namespace's),
//! data in a temporary directory, fast elections, every process ended by PID when the
//! cluster is dropped.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Client TLS material for a cluster started with `tls`.
#[derive(Debug, Clone)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct Cluster {
    dir: tempfile::TempDir,
    host: IpAddr,
    members: Vec<Member>,
    /// How to start a process (e.g. inside a network namespace).
    launcher: Box<dyn Fn(&str) -> Command + Send + Sync>,
    tls: Option<Tls>,
}

struct Member {
    name: String,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

/// Two free TCP ports on loopback per member. (A port could be taken between this
/// and etcd's bind; on a test machine that does not happen in practice.)
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind")).collect();
    listeners.iter().map(|l| l.local_addr().expect("bound").port()).collect()
}

impl Cluster {
    /// `n` members on 127.0.0.1, plain HTTP.
    pub fn start(n: usize) -> std::io::Result<Cluster> {
        let ports = free_ports(2 * n);
        Cluster::start_with(n, IpAddr::V4(Ipv4Addr::LOCALHOST), &ports, Box::new(|p: &str| Command::new(p)), false)
    }

    /// `n` members on 127.0.0.1 serving clients over TLS with client certificates
    /// required (certificates made with the `openssl` command).
    pub fn start_tls(n: usize) -> std::io::Result<Cluster> {
        let ports = free_ports(2 * n);
        Cluster::start_with(n, IpAddr::V4(Ipv4Addr::LOCALHOST), &ports, Box::new(|p: &str| Command::new(p)), true)
    }

    /// `n` members on `host`, ports `ports` (client, peer per member), each process
    /// made by `launcher`.
    pub fn start_with(
        n: usize,
        host: IpAddr,
        ports: &[u16],
        launcher: Box<dyn Fn(&str) -> Command + Send + Sync>,
        tls: bool,
    ) -> std::io::Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let tls = if tls { Some(make_certs(dir.path(), host)?) } else { None };
        let members = (0..n)
            .map(|i| Member { name: format!("m{i}"), client: ports[2 * i], peer: ports[2 * i + 1], child: None })
            .collect();
        let mut c = Cluster { dir, host, members, launcher, tls };
        for i in 0..n {
            c.spawn(i, "new")?;
        }
        c.wait_healthy(Duration::from_secs(20))?;
        Ok(c)
    }

    fn url(&self, scheme: &str, port: u16) -> String {
        match self.host {
            IpAddr::V6(a) => format!("{scheme}://[{a}]:{port}"),
            IpAddr::V4(a) => format!("{scheme}://{a}:{port}"),
        }
    }

    fn client_scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    fn spawn(&mut self, i: usize, state: &str) -> std::io::Result<()> {
        let initial: Vec<String> =
            self.members.iter().map(|m| format!("{}={}", m.name, self.url("http", m.peer))).collect();
        let m = &self.members[i];
        let client = self.url(self.client_scheme(), m.client);
        let peer = self.url("http", m.peer);
        let mut cmd = (self.launcher)("etcd");
        cmd.args(["--name", &m.name])
            .arg("--data-dir")
            .arg(self.dir.path().join(&m.name))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial.join(","), "--initial-cluster-state", state])
            .args([
                "--initial-cluster-token",
                "underlay-test",
                "--heartbeat-interval",
                "50",
                "--election-timeout",
                "500",
            ])
            .args(["--log-level", "error"]);
        if let Some(t) = &self.tls {
            let d = self.dir.path();
            cmd.arg("--cert-file").arg(d.join("server.crt")).arg("--key-file").arg(d.join("server.key"));
            cmd.arg("--trusted-ca-file").arg(&t.ca).arg("--client-cert-auth");
        }
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", m.name)))?;
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn()?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// Client URLs of every member (running or not).
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| self.url(self.client_scheme(), m.client)).collect()
    }

    /// The member that leads now, as `etcdctl endpoint status` reports it.
    pub fn leader(&self) -> Option<usize> {
        let running: Vec<(usize, String)> = self
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.child.is_some())
            .map(|(i, m)| (i, self.url(self.client_scheme(), m.client)))
            .collect();
        let urls: Vec<&str> = running.iter().map(|(_, u)| u.as_str()).collect();
        let mut cmd = (self.launcher)("etcdctl");
        cmd.env("ETCDCTL_API", "3").args(["endpoint", "status", "-w", "json", "--endpoints", &urls.join(",")]);
        if let Some(t) = &self.tls {
            cmd.arg("--cacert").arg(&t.ca).arg("--cert").arg(&t.cert).arg("--key").arg(&t.key);
        }
        let out = cmd.stderr(Stdio::null()).output().ok()?;
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let leads = status.as_array()?.iter().find(|e| e["Status"]["header"]["member_id"] == e["Status"]["leader"])?;
        let url = leads["Endpoint"].as_str()?;
        running.iter().find(|(_, u)| u == url).map(|(i, _)| *i)
    }

    /// PIDs of the running members.
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().filter_map(|m| m.child.as_ref().map(Child::id)).collect()
    }

    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    /// The `ipam.etcd` section that reaches this cluster.
    pub fn etcd_conf(&self) -> serde_json::Value {
        let mut v = serde_json::json!({"endpoints": self.endpoints()});
        if let Some(t) = &self.tls {
            v["caFile"] = serde_json::json!(t.ca);
            v["certFile"] = serde_json::json!(t.cert);
            v["keyFile"] = serde_json::json!(t.key);
        }
        v
    }

    /// Ends member `i` with SIGKILL, by PID.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data.
    pub fn restart(&mut self, i: usize) -> std::io::Result<()> {
        self.spawn(i, "existing")
    }

    /// Waits until every running member reports healthy (`etcdctl endpoint health`).
    pub fn wait_healthy(&self, timeout: Duration) -> std::io::Result<()> {
        let deadline = Instant::now() + timeout;
        let running: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| self.url(self.client_scheme(), m.client))
            .collect();
        loop {
            let mut cmd = (self.launcher)("etcdctl");
            cmd.env("ETCDCTL_API", "3").args([
                "endpoint",
                "health",
                "--command-timeout=1s",
                "--endpoints",
                &running.join(","),
            ]);
            if let Some(t) = &self.tls {
                cmd.arg("--cacert").arg(&t.ca).arg("--cert").arg(&t.cert).arg("--key").arg(&t.key);
            }
            let ok = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .members
                    .iter()
                    .map(|m| {
                        std::fs::read_to_string(self.dir.path().join(format!("{}.log", m.name))).unwrap_or_default()
                    })
                    .collect();
                return Err(std::io::Error::other(format!("etcd cluster not healthy: {}", logs.join("\n"))));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// gRPC requests the running members have handled so far, from their metrics
    /// (plain HTTP clusters only): how many requests a call cost is the difference.
    pub fn grpc_requests(&self) -> std::io::Result<u64> {
        use std::io::{Read, Write};
        let mut total = 0;
        for m in self.members.iter().filter(|m| m.child.is_some()) {
            let host = std::net::SocketAddr::new(self.host, m.client);
            let mut s = std::net::TcpStream::connect(host)?;
            write!(s, "GET /metrics HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            total += body
                .lines()
                .filter(|l| l.starts_with("grpc_server_handled_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64;
        }
        Ok(total)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

fn openssl(dir: &Path, args: &[&str]) -> std::io::Result<()> {
    let out = Command::new("openssl").current_dir(dir).args(args).stdin(Stdio::null()).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr))))
    }
}

/// A CA, a server certificate for `host` and a client certificate, P-256 keys.
fn make_certs(dir: &Path, host: IpAddr) -> std::io::Result<Tls> {
    let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let ca: Vec<&str> = [
        &["req", "-x509"][..],
        &key,
        &["-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=underlay-test-ca", "-days", "2"],
    ]
    .concat();
    openssl(dir, &ca)?;
    for (name, ext) in [
        ("server", format!("subjectAltName=IP:{host}\nextendedKeyUsage=serverAuth")),
        ("client", "extendedKeyUsage=clientAuth".to_string()),
    ] {
        let (k, csr, crt, extf, subj) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
            format!("/CN={name}"),
        );
        let req: Vec<&str> = [&["req"][..], &key, &["-keyout", &k, "-out", &csr, "-subj", &subj]].concat();
        openssl(dir, &req)?;
        std::fs::write(dir.join(&extf), ext)?;
        let sign = ["x509", "-req", "-in", &csr, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", &crt];
        openssl(dir, &[&sign[..], &["-days", "2", "-extfile", &extf]].concat())?;
    }
    Ok(Tls { ca: dir.join("ca.crt"), cert: dir.join("client.crt"), key: dir.join("client.key") })
}
