//! `underlay-dist`: writes the man pages and shell completions of the programs the
//! Debian package installs, from their clap definitions, so the documentation of every
//! flag is the code's. `scripts/package` runs it while building the package.
//!
//! ```text
//! underlay-dist man DIR           underlay.1, underlay-network.1, underlay-network-create.1, ...
//! underlay-dist completions DIR   bash/underlay, zsh/_underlay, fish/underlay.fish
//! ```

mod pages;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "underlay-dist", version, about = "Man pages and completions for underlay's package")]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Write a man page (section 1) for each program and each of its subcommands.
    Man { dir: PathBuf },
    /// Write bash, zsh and fish completions for each program.
    Completions { dir: PathBuf },
}

fn main() -> anyhow::Result<()> {
    let written = match Cli::parse().what {
        What::Man { dir } => pages::man(&dir).with_context(|| format!("write man pages to {}", dir.display()))?,
        What::Completions { dir } => {
            pages::completions(&dir).with_context(|| format!("write completions to {}", dir.display()))?
        }
    };
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}
