//! `dhcp`: the CNI plugin, or with `daemon` as its first argument the daemon
//! (`dhcp daemon [--socket PATH] [--state-dir DIR]`).

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some("daemon".as_ref()) {
        underlay::cni::plugin::main(&dhcp::Dhcp);
    }
    let mut socket = PathBuf::from(dhcp::rpc::DEFAULT_SOCKET);
    let mut state = PathBuf::from(dhcp::daemon::DEFAULT_STATE_DIR);
    while let Some(flag) = args.next() {
        let value = args.next().map(PathBuf::from);
        match (flag.to_str(), value) {
            (Some("--socket" | "-socketpath"), Some(v)) => socket = v,
            (Some("--state-dir"), Some(v)) => state = v,
            (f, _) => {
                eprintln!(
                    "dhcp daemon: unknown or incomplete argument {:?}; usage: dhcp daemon [--socket PATH] [--state-dir DIR]",
                    f.unwrap_or("?")
                );
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = dhcp::daemon::serve(&socket, &state) {
        eprintln!("dhcp daemon: {e}");
        std::process::exit(1);
    }
}
