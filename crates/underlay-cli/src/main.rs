//! `underlay`: macvlan networking for plain Linux hosts, and the lab that shows it.

mod lab;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "underlay",
    version,
    about = "Containers straight on the LAN: macvlan networking, checked on the real kernel"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the seed's LAN in network namespaces and check it (nothing leaves them).
    Lab(lab::LabArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lab(args) => lab::run(args),
    };
    if let Err(e) = result {
        eprintln!("underlay: {e:#}");
        std::process::exit(1);
    }
}
