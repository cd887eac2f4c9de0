//! `underlay-lab` (also `underlay lab`): the seed's LAN built in network namespaces, with pods attached by
//! our CNI plugins (the seed's own JSON) and the seed's Docker example run by this
//! command; every testable claim of the seed checked on the real kernel, and the paths
//! measured against a bridge + NAT one. Nothing leaves the lab's namespaces.

mod addresses;
mod attach;
mod bench;
mod build;
mod chart;
mod check;
mod claim;
mod dhcp;
mod ipvlan_path;
mod isolation;
mod measured;
mod modes;
mod record;
pub mod serve;
mod sweep;
mod topology;

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};

use underlay_cli::output::Format;
use underlay_linux::interrupt;
pub use underlay_linux::interrupt::Interrupted;

/// The `underlay-lab` command line (here, not in main.rs, so the package's man page and
/// completions are generated from it).
#[derive(Parser)]
#[command(name = "underlay-lab", version, about = "The seed's LAN in network namespaces, every claim checked")]
pub struct Cli {
    #[command(flatten)]
    pub lab: LabArgs,
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LabArgs {
    #[command(subcommand)]
    command: Option<LabCommand>,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    build: BuildOptions,
    #[command(flatten)]
    report: Report,
}

#[derive(Subcommand)]
enum LabCommand {
    /// Build the lab and leave it up.
    Up(BuildOptions),
    /// Check the seed's claims in the lab that is up (exit 1 if one fails).
    Check(Report),
    /// Measure macvlan paths against a bridge + NAT path and the node's own.
    Bench {
        #[command(flatten)]
        opts: bench::BenchOptions,
        #[command(flatten)]
        report: Report,
    },
    /// Remove everything the lab made.
    Down,
    /// (Internal) a lab host's server.
    #[command(name = "__lab-serve", hide = true)]
    Serve {
        /// TCP ports to listen on.
        ports: Vec<u16>,
    },
}

#[derive(Args, Clone)]
pub struct Common {
    /// Where the lab's files are kept (the same directory as `underlay --run-dir`).
    #[arg(long, global = true, env = "UNDERLAY_RUN_DIR", default_value = "/run/underlay")]
    run_dir: PathBuf,
    /// The lab's name: its namespaces are ul-<name>-*, its files <run-dir>/lab/<name>.
    #[arg(long, global = true, default_value = "lab", value_parser = lab_name)]
    name: String,
    /// Where the pictures go (topology, benchmark chart).
    #[arg(long, global = true, default_value = ".")]
    out: PathBuf,
}

/// How results are printed (only by the commands that print results).
#[derive(Args, Clone, Copy)]
pub struct Report {
    /// A table for people, or JSON rows for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Args, Clone, Copy)]
pub struct BuildOptions {
    /// Nodes on the LAN (the seed has 2).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=8))]
    nodes: u8,
    /// Pods per node, attached with the seed's CNI config.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=16))]
    pods: u8,
    /// The switch reflects frames back out of the port they came in on.
    #[arg(long)]
    hairpin: bool,
    /// The switch drops frames from MACs not plugged into the port (like clouds).
    #[arg(long)]
    drop_unknown_macs: bool,
}

fn lab_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok { Ok(s.to_string()) } else { Err(format!("\"{s}\": 1-12 lowercase letters or digits")) }
}

pub fn run(args: LabArgs) -> Result<bool> {
    interrupt::catch();
    let c = &args.common;
    let run_dir: &Path = &c.run_dir;
    match args.command {
        None => {
            let lab = build::up(run_dir, &c.name, args.build, &c.out)?;
            let rows = check::run(&lab);
            build::down(run_dir, &c.name, Some(lab))?;
            let rows = rows?;
            check::print(&rows, args.report.format);
            Ok(check::passed(&rows))
        }
        Some(LabCommand::Up(opts)) => {
            build::up(run_dir, &c.name, opts, &c.out)?;
            Ok(true)
        }
        Some(LabCommand::Check(report)) => {
            let lab = record::Lab::load(run_dir, &c.name, record::lock(run_dir, &c.name)?)?;
            let rows = check::run(&lab)?;
            check::print(&rows, report.format);
            Ok(check::passed(&rows))
        }
        Some(LabCommand::Bench { opts, report }) => {
            let mut lab = record::Lab::load(run_dir, &c.name, record::lock(run_dir, &c.name)?)?;
            bench::run(&mut lab, &opts, report.format, &c.out)?;
            Ok(true)
        }
        Some(LabCommand::Down) => {
            build::down(run_dir, &c.name, None)?;
            Ok(true)
        }
        Some(LabCommand::Serve { ports }) => serve(&ports).map(|()| true),
    }
}

/// `underlay-lab __lab-serve PORT...`: a lab host's server.
fn serve(ports: &[u16]) -> Result<()> {
    if ports.is_empty() {
        bail!("no port to serve");
    }
    serve::serve(ports)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_argument_of_every_subcommand_is_described() {
        let missing = underlay_cli::help::undescribed(&<super::Cli as clap::CommandFactory>::command());
        assert!(missing.is_empty(), "arguments without help:\n{}", missing.join("\n"));
    }
}
