//! Man pages (clap_mangen) and completions (clap_complete) for the programs whose clap
//! definitions are reachable as a library: add a program to `programs` when it gets one.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

/// The programs documented, with their clap definitions.
pub fn programs() -> Vec<clap::Command> {
    vec![underlay_cli::command::Cli::command(), underlay_lab::Cli::command()]
}

/// One page per program and per visible subcommand, named `prog-sub-subsub.1`.
pub fn man(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    for cmd in programs() {
        clap_mangen::generate_to(cmd, dir)?;
    }
    let mut written: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    written.sort();
    Ok(written)
}

/// Where each shell's completion directory expects a program's file (the file name
/// bash-completion looks up on first use is the program's name).
fn file_name(shell: Shell, program: &str) -> String {
    match shell {
        Shell::Zsh => format!("_{program}"),
        Shell::Fish => format!("{program}.fish"),
        _ => program.to_string(),
    }
}

pub fn completions(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for mut cmd in programs() {
        let name = cmd.get_name().to_string();
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let sub = dir.join(shell.to_string());
            std::fs::create_dir_all(&sub)?;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, &name, &mut script);
            let path = sub.join(file_name(shell, &name));
            std::fs::write(&path, script)?;
            written.push(path);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_for_the_program_and_each_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> =
            man(dir.path()).unwrap().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        for want in [
            "underlay.1",
            "underlay-network.1",
            "underlay-network-create.1",
            "underlay-host-access.1",
            "underlay-lab.1",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
        }
        let page = std::fs::read_to_string(dir.path().join("underlay-network-create.1")).unwrap();
        assert!(page.contains("subnet"), "the page documents the flags: {page}");
    }

    #[test]
    fn completions_for_three_shells_know_the_subcommands() {
        let dir = tempfile::tempdir().unwrap();
        completions(dir.path()).unwrap();
        for file in ["bash/underlay", "zsh/_underlay", "fish/underlay.fish"] {
            let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
            assert!(text.contains("network") && text.contains("host-access"), "{file}");
        }
    }
}
