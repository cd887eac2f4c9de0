//! `underlay-lab`: build the seed's LAN in network namespaces and check it (nothing
//! leaves them). Parse, dispatch, exit code.

use std::process::ExitCode;

use clap::Parser;
use underlay_cli::failure::{Failure, exit};
use underlay_lab::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The lab attaches pods through the CLI's in-process CNI call: same delegates as `underlay`.
    underlay::ipam::delegate::host_local_in_process();
    underlay::ipam::delegate::link("underlay-ipam", &underlay_ipam::UnderlayIpam);
    underlay::ipam::delegate::link("dhcp", &dhcp::Dhcp);
    match underlay_lab::run(cli.lab) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(exit::FAILED),
        Err(e) if e.is::<underlay_lab::Interrupted>() => ExitCode::from(130),
        Err(e) => {
            let code = e.downcast_ref::<Failure>().map_or(exit::FAILED, |f| f.code);
            eprintln!("underlay-lab: {e:#}");
            ExitCode::from(code)
        }
    }
}
