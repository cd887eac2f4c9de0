//! `lab up` and `lab down`: the seed's topology — switch, gateway 192.168.1.1, external
//! device 192.168.1.9, node1 192.168.1.10 and node2 192.168.1.11 on `enp0s3` — with
//! pods attached by the macvlan + host-local plugins from the seed's Kubernetes JSON,
//! and the seed's Docker example (`container1` at 192.168.1.100) run by this command.

use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use underlay::MacAddr;
use underlay_linux::Netns;
use underlay_linux::world::{Host, World};

use super::record::{self, Lab, Pod, Record};
use super::topology::{CONTAINER, CONTAINER_IP};
use super::{BuildOptions, interrupt, serve, sweep, topology};
use underlay_cli::failure::Failure;

/// The seed's Kubernetes network config, verbatim.
pub const SEED_CNI: &str = r#"{"cniVersion": "0.4.0","name": "macvlan-conf","type": "macvlan","master": "enp0s3","mode": "bridge","ipam": {"type": "host-local","subnet": "192.168.1.0/24","gateway": "192.168.1.1","rangeStart": "192.168.1.100","rangeEnd": "192.168.1.200"} }"#;
/// The seed's Docker example.
pub const NETWORK: &str = "my-macvlan-network";
/// Where the pods serve (the seed's web service), and the hosts' stand-ins.
pub const WEB_PORT: u16 = 9090;
pub const SSH_PORT: u16 = 22;
pub const HTTP_PORT: u16 = 80;

fn step(what: &str, since: Instant) {
    eprintln!("  {:>5.1}s  {what}", since.elapsed().as_secs_f64());
}

pub fn up(run_dir: &Path, name: &str, opts: BuildOptions, out: &Path) -> Result<Lab> {
    let lock = record::lock(run_dir, name)?;
    let lock = match Lab::find(run_dir, name, lock)? {
        Ok(_) => bail!(Failure::conflict(format!(
            "lab \"{name}\" is already up: `underlay lab check`, or `underlay lab down` first"
        ))),
        Err(lock) => lock,
    };
    let record = Record {
        name: name.to_string(),
        prefix: format!("ul-{name}"),
        nodes: opts.nodes.into(),
        pods: opts.pods.into(),
        hairpin: opts.hairpin,
        drop_unknown_macs: opts.drop_unknown_macs,
        processes: vec![],
        pods_made: vec![],
    };
    if let Some(taken) = record.namespaces().into_iter().find(|n| Netns::exists(n)) {
        bail!(Failure::conflict(format!(
            "network namespace {taken} exists, and lab \"{name}\" did not make it: remove it, or pick another --name"
        )));
    }
    let mut lab = Lab::create(run_dir, record, lock)?;
    match populate(&mut lab, out) {
        Ok(()) => Ok(lab),
        Err(e) => {
            eprintln!("lab up failed ({e:#}); removing what it made");
            teardown(lab);
            Err(e)
        }
    }
}

fn populate(lab: &mut Lab, out: &Path) -> Result<()> {
    let t = Instant::now();
    eprintln!("Building lab \"{}\" (namespaces {}-*):", lab.record.name, lab.record.prefix);
    let world = World::build(lab.record.spec()).context("build the lab's LAN (it needs root)")?;
    step("switch, gateway 192.168.1.1, external device 192.168.1.9, nodes from 192.168.1.10", t);
    let hosts: Vec<(&Host, u16)> = world
        .gateway
        .iter()
        .chain(world.external.iter())
        .map(|h| (h, HTTP_PORT))
        .chain(world.nodes.iter().map(|h| (h, SSH_PORT)))
        .collect();
    for (h, port) in hosts {
        interrupt::check()?;
        start_server(lab, &h.netns, port)?;
    }
    step("servers: :80 on the gateway and external device, :22 (the SSH stand-in) on nodes", t);
    attach_pods(lab, &world)?;
    step(
        &format!(
            "{} pods attached by macvlan + host-local from the seed's JSON, serving :9090",
            lab.record.pods_made.len()
        ),
        t,
    );
    docker_example(lab, &world)?;
    step("underlay network create ... my-macvlan-network; underlay run --ip 192.168.1.100 -d --name container1", t);
    world.keep();
    let world = lab.world()?;
    let mac = container(lab, &world).ok().map(|(_, _, mac)| mac.to_string());
    let files = topology::write(lab, out, mac)?;
    step(&format!("topology: {}", files.display()), t);
    eprintln!("{}", crate::addresses::hint(lab.record.nodes));
    Ok(interrupt::check()?)
}

/// Starts `underlay-lab __lab-serve PORT` in `ns`, in its own process group (Ctrl-C on the
/// terminal is for the lab command, not its servers).
pub fn start_server(lab: &mut Lab, ns: &Netns, port: u16) -> Result<underlay_cli::model::Proc> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("find the underlay-lab executable")?;
    let child = ns
        .command(exe)
        .args(["__lab-serve", &port.to_string()])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start a lab server")?;
    let server = lab.adopt(child.id())?;
    serve::wait_listening(ns, port)?;
    Ok(server)
}

/// The seed's JSON for node `i`: the seed gives every node the same range, which two
/// node-local host-local stores would both hand out (a claim `check` shows), so each
/// node gets its own slice of 192.168.1.101-200 (.100 is container1's).
pub fn seed_conf_for(lab: &Lab, node: usize) -> Value {
    let nodes = lab.record.nodes as u32;
    let size = 100 / nodes;
    let first = 101 + node as u32 * size;
    let last = if node as u32 + 1 == nodes { 200 } else { first + size - 1 };
    let mut conf: Value = serde_json::from_str(SEED_CNI).expect("the seed's JSON parses");
    conf["ipam"]["rangeStart"] = json!(format!("192.168.1.{first}"));
    conf["ipam"]["rangeEnd"] = json!(format!("192.168.1.{last}"));
    conf["ipam"]["dataDir"] = json!(lab.cni_dir(node));
    conf
}

fn attach_pods(lab: &mut Lab, world: &World) -> Result<()> {
    for node in 0..lab.record.nodes {
        let conf = seed_conf_for(lab, node);
        for k in 0..lab.record.pods {
            interrupt::check()?;
            let idx = node * lab.record.pods + k;
            let role = format!("pod{}", idx + 1);
            let pod = &world.pods[idx];
            let path = pod.path().to_path_buf();
            let added = world.nodes[node]
                .netns
                .run(|| underlay_cli::endpoint::cni_call("ADD", &role, &path, "eth0", "", &conf))?
                .map_err(|e| anyhow!("attach {role} with the seed's CNI config: {e}"))?
                .unwrap_or_default();
            let ip = added.ips.first().map(|i| i.address.addr()).context("the plugin gave no address")?;
            let mac = added
                .interfaces
                .first()
                .and_then(|i| i.mac.as_ref())
                .and_then(|m| MacAddr::try_from(m).ok())
                .context("the plugin gave no MAC")?;
            lab.record.pods_made.push(Pod { role, node, ip, mac });
            lab.save()?;
            start_server(lab, pod, WEB_PORT)?;
        }
    }
    Ok(())
}

/// `underlay` inside node `node`'s namespace, with the lab's state.
pub fn cli(lab: &Lab, node_ns: &Netns, node: usize, args: &[&str]) -> Result<Output> {
    let (state, run) = lab.cli_dirs(node);
    let exe = underlay_exe()?;
    let mut cmd: Command = node_ns.command(exe);
    cmd.arg("--state-dir").arg(state).arg("--run-dir").arg(run).args(args).stdin(Stdio::null());
    cmd.output().with_context(|| format!("run underlay {}", args.join(" ")))
}

/// The `underlay` executable next to this one: the lab drives the product as users do.
fn underlay_exe() -> Result<std::path::PathBuf> {
    let me = std::env::current_exe().context("find the underlay-lab executable")?;
    let exe = me.with_file_name("underlay");
    if !exe.is_file() {
        bail!("{} does not exist: build it next to underlay-lab (cargo build --bin underlay)", exe.display());
    }
    Ok(exe)
}

fn cli_ok(lab: &Lab, node_ns: &Netns, args: &[&str]) -> Result<Output> {
    let out = cli(lab, node_ns, 0, args)?;
    if !out.status.success() {
        bail!("underlay {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out)
}

fn docker_example(lab: &mut Lab, world: &World) -> Result<()> {
    interrupt::check()?;
    let node = &world.nodes[0].netns;
    let exe = std::env::current_exe().context("find the underlay-lab executable")?;
    let exe = exe.to_string_lossy();
    let web = WEB_PORT.to_string();
    cli_ok(
        lab,
        node,
        &[
            "network",
            "create",
            "--driver",
            "macvlan",
            "--subnet=192.168.1.0/24",
            "--gateway=192.168.1.1",
            "-o",
            "parent=enp0s3",
            NETWORK,
        ],
    )?;
    cli_ok(
        lab,
        node,
        &[
            "run",
            "--network",
            NETWORK,
            "--ip",
            CONTAINER_IP,
            "-d",
            "--name",
            CONTAINER,
            "--",
            &exe,
            "__lab-serve",
            &web,
        ],
    )?;
    let (ns, _, _) = container(lab, world)?;
    serve::wait_listening(&ns, WEB_PORT)
}

/// container1's namespace, address and MAC, as `underlay ps` reports them.
pub fn container(lab: &Lab, world: &World) -> Result<(Netns, IpAddr, MacAddr)> {
    let out = cli_ok(lab, &world.nodes[0].netns, &["ps", "--format", "json"])?;
    let eps: Vec<Value> = serde_json::from_slice(&out.stdout).context("read `underlay ps`")?;
    let ep = eps.iter().find(|e| e["name"] == CONTAINER).context("container1 is not running")?;
    let ns = Netns::open(ep["netns"].as_str().unwrap_or_default())?;
    let ip =
        ep["ips"][0].as_str().and_then(|s| s.split('/').next()?.parse().ok()).context("container1 has no address")?;
    let mac = ep["mac"].as_str().and_then(|m| m.parse().ok()).context("container1 has no MAC")?;
    Ok((ns, ip, mac))
}

/// Removes every trace of lab `name`: its container through `underlay`, its processes,
/// its namespaces, its files. Safe to repeat, and after any crash.
pub fn down(run_dir: &Path, name: &str, lab: Option<Lab>) -> Result<()> {
    let lab = match lab {
        Some(lab) => lab,
        None => match Lab::find(run_dir, name, record::lock(run_dir, name)?)? {
            Ok(lab) => lab,
            Err(_) => {
                eprintln!("lab \"{name}\" is not up; nothing to remove");
                return Ok(());
            }
        },
    };
    let t = Instant::now();
    teardown(lab);
    step(&format!("lab \"{name}\" removed"), t);
    Ok(())
}

fn teardown(lab: Lab) {
    let node1 = format!("{}-node1", lab.record.prefix);
    if let Ok(ns) = Netns::open(Path::new(underlay_linux::netns::NETNS_DIR).join(&node1)) {
        for args in [&["stop", "-t", "1", CONTAINER][..], &["network", "rm", NETWORK]] {
            match cli(&lab, &ns, 0, args) {
                Ok(o)
                    if o.status.success() || o.status.code() == Some(underlay_cli::failure::exit::NOT_FOUND.into()) => {
                }
                Ok(o) => {
                    eprintln!("warning: underlay {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim())
                }
                Err(e) => eprintln!("warning: {e:#}"),
            }
        }
    }
    // Whatever `underlay stop` could not end (its node gone, say): by the records.
    for node in 0..lab.record.nodes {
        let (state, run) = lab.cli_dirs(node);
        let dirs = underlay_cli::state::Dirs { state, run };
        if let Ok(eps) = underlay_cli::state::State::lock(&dirs).and_then(|s| s.endpoints()) {
            eps.iter().flat_map(|e| e.keeper.iter().chain(e.process.iter())).for_each(|p| p.kill());
        }
    }
    for p in lab.all_processes() {
        p.kill();
    }
    // And whatever no record names (an `up` killed between starting it and writing it).
    let mut pins: Vec<std::path::PathBuf> =
        lab.record.namespaces().iter().map(|n| Path::new(underlay_linux::netns::NETNS_DIR).join(n)).collect();
    for node in 0..lab.record.nodes {
        let dir = lab.cli_dirs(node).1.join("netns");
        pins.extend(std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()));
    }
    let stray = sweep::kill_inside(&pins);
    if stray > 0 {
        eprintln!("lab \"{}\": killed {stray} process(es) no record named", lab.record.name);
    }
    World::remove_all(&lab.record.spec(), &lab.record.prefix, &lab.record.scratch());
    // Namespaces `underlay run` pinned, if it could not remove them itself.
    for node in 0..lab.record.nodes {
        let pins = lab.cli_dirs(node).1.join("netns");
        for e in std::fs::read_dir(&pins).into_iter().flatten().flatten() {
            let _ = Netns::delete_in(&pins, &e.file_name().to_string_lossy());
        }
    }
    if let Err(e) = lab.remove_files() {
        eprintln!("warning: {e:#}");
    }
}
