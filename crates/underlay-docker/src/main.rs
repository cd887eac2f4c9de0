//! `underlay-docker-plugin`: parses flags, recovers from a previous run, serves.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use underlay_docker::driver::Driver;
use underlay_docker::ipam::Ipam;
use underlay_docker::records::Records;
use underlay_docker::server::{Plugin, serve};

/// Docker network + IPAM driver `underlay` (macvlan).
#[derive(Parser)]
#[command(name = "underlay-docker-plugin", version)]
struct Args {
    /// Directory dockerd looks for plugin sockets in.
    #[arg(long, env = "UNDERLAY_DOCKER_PLUGIN_DIR", default_value = "/run/docker/plugins")]
    socket_dir: PathBuf,
    /// The driver name: the socket is <socket-dir>/<name>.sock.
    #[arg(long, default_value = "underlay")]
    name: String,
    /// Where networks, endpoints and address reservations are kept.
    #[arg(long, env = "UNDERLAY_DOCKER_STATE_DIR", default_value = "/var/lib/underlay/docker")]
    state_dir: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let records = Records::open(&args.state_dir).with_context(|| format!("open {}", args.state_dir.display()))?;
    let driver = Driver::new(records);
    for line in driver.recover() {
        eprintln!("underlay-docker-plugin: {line}");
    }
    let plugin = Arc::new(Plugin { driver, ipam: Ipam::new(args.state_dir.join("ipam")) });
    let socket = args.socket_dir.join(format!("{}.sock", args.name));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().max_blocking_threads(4).build()?;
    rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        // systemd and tests stop it with SIGTERM: leave no stale socket behind.
        let mut term = signal(SignalKind::terminate()).context("watch SIGTERM")?;
        let served = serve(plugin, &socket);
        tokio::select! {
            r = served => r.with_context(|| format!("serve {}", socket.display())),
            _ = tokio::signal::ctrl_c() => Ok(()),
            _ = term.recv() => Ok(()),
        }
    })?;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}
