//! Claims about DHCP (seed §2.2, §5.2): a macvlan pod is a device of its own on the
//! LAN, so the LAN's DHCP server leases it an address directly. The server is dnsmasq
//! on the external device; the lease goes through our `dhcp` plugin and its daemon.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use underlay::MacAddr;

use super::build::WEB_PORT;
use super::claim::{ANSWER, Claim, Ctx, Outcome};
use super::serve::get;

pub const CLAIMS: [Claim; 1] =
    [("2.2", "a pod can get its address from the LAN's own DHCP server", lease_from_the_lan)];

/// Addresses the lab's static hosts and pods never use.
const RANGE: &str = "192.168.1.210,192.168.1.229";

/// A child ended by PID when dropped; its PID is in the lab's record until then, so
/// `lab down` ends it after a crash.
struct Ended(Child);

impl Drop for Ended {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(c: &Ctx, mut cmd: Command, what: &str) -> Result<Ended> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("start {what}"))?;
    c.lab.note_process(child.id())?;
    Ok(Ended(child))
}

fn wait_for(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ok()
}

fn leased(leases: &Path, mac: MacAddr) -> bool {
    std::fs::read_to_string(leases).is_ok_and(|l| l.contains(&mac.to_string()))
}

fn lease_from_the_lan(c: &mut Ctx) -> Result<Outcome> {
    let expected = "the pod leases an address of dnsmasq's range (on the external device); DEL releases it";
    let Some(dnsmasq) = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"].into_iter().find(|p| Path::new(p).is_file()) else {
        return Ok(Outcome::skipped(expected, "dnsmasq is not installed (apt-get install dnsmasq-base)"));
    };
    let daemon_exe = std::env::current_exe()?.with_file_name("dhcp");
    if !daemon_exe.is_file() {
        bail!("{} does not exist: build it next to underlay-lab (cargo build --bin dhcp)", daemon_exe.display());
    }
    let dir = c.lab.dir.join("dhcp");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (leases, socket) = (dir.join("dnsmasq.leases"), dir.join("dhcp.sock"));
    let ext = c.ext();
    let mut server = ext.netns.command(dnsmasq);
    server.args(["--no-daemon", "--conf-file=/dev/null", "--bind-interfaces", "--port=0", "--no-ping"]);
    server.arg(format!("--interface={}", ext.ifname)).arg(format!("--dhcp-range={RANGE},255.255.255.0,2m"));
    server.arg("--dhcp-option=option:router,192.168.1.1").arg(format!("--dhcp-leasefile={}", leases.display()));
    let _server = start(c, server, "dnsmasq")?;
    let mut daemon = Command::new(&daemon_exe);
    daemon.arg("daemon").arg("--socket").arg(&socket).arg("--state-dir").arg(dir.join("state"));
    let _daemon = start(c, daemon, "the dhcp daemon")?;
    if !wait_for(Duration::from_secs(5), || socket.exists()) {
        bail!("the dhcp daemon did not open {}", socket.display());
    }

    let pod = c.world.add_pod("dhcp")?;
    let conf = json!({"cniVersion": "1.0.0", "name": "lan-dhcp", "type": "macvlan", "master": "enp0s3",
        "mode": "bridge", "ipam": {"type": "dhcp", "daemonSocketPath": socket}});
    let path = pod.path().to_path_buf();
    let call = |verb: &str| {
        c.node(1).netns.run(|| underlay_cli::endpoint::cni_call(verb, "dhcp-pod", &path, "eth0", "", &conf))
    };
    let added = call("ADD")?.map_err(|e| anyhow::anyhow!("ADD with the dhcp IPAM: {e}"))?.unwrap_or_default();
    let ip = added.ips.first().map(|i| i.address.addr()).context("the dhcp IPAM gave no address")?;
    let mac = added.interfaces.first().and_then(|i| i.mac.as_ref()).and_then(|m| MacAddr::try_from(m).ok());
    let mac = mac.context("the plugin gave no MAC")?;
    let in_range = ip
        .to_string()
        .strip_prefix("192.168.1.")
        .and_then(|h| h.parse::<u8>().ok())
        .is_some_and(|h| (210..=229).contains(&h));
    let listed = leased(&leases, mac);
    // The pod is on the LAN with that address: the external device reaches it.
    let mut server = pod.command(std::env::current_exe()?);
    server.args(["__lab-serve", &WEB_PORT.to_string()]);
    let web = start(c, server, "a lab server")?;
    super::serve::wait_listening(&pod, WEB_PORT)?;
    let reached = get(&c.ext().netns, ip, WEB_PORT, ANSWER)?.is_some();
    drop(web);
    call("DEL")?.map_err(|e| anyhow::anyhow!("DEL with the dhcp IPAM: {e}"))?;
    let released = wait_for(Duration::from_secs(5), || !leased(&leases, mac));
    let _ = c.world.remove(pod.name().unwrap_or_default());
    let ok = in_range && listed && reached && released;
    let observed = format!(
        "pod on node2 leased {ip} (MAC {mac}); dnsmasq's lease file {} it; the external device {} it; after DEL the lease is {}",
        if listed { "lists" } else { "does not list" },
        if reached { "reaches" } else { "does not reach" },
        if released { "released" } else { "still there" },
    );
    Ok(Outcome::new(expected, observed, ok).note(
        "No range was configured anywhere: the address, gateway and lease time came from the server, and the lease \
         lives on in the dhcp daemon (renewed at T1) as long as the pod does.",
    ))
}
