//! `underlay-bench`: runs our plugins and the reference plugins side by side, in the
//! same run, and prints latencies, ratios and peak memory. A command, not a test.

mod host_local;
mod measure;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "underlay-bench", about = "underlay's plugins against the reference plugins, side by side")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// host-local allocation latency with 1, 1000 and 4000 existing reservations.
    HostLocal(host_local::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::HostLocal(args) => host_local::run(args),
    }
}
