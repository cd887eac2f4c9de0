//! `--help` as a user reads it: every argument of every subcommand described, global
//! options under their own heading, internal subcommands hidden, units named.

use clap::CommandFactory;
use underlay_cli::command::Cli;

#[test]
fn every_argument_of_every_subcommand_is_described() {
    let missing = underlay_cli::help::undescribed(&Cli::command());
    assert!(missing.is_empty(), "arguments without help:\n{}", missing.join("\n"));
}

fn help(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_underlay")).args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn help_texts_read_well() {
    let top = help(&[]);
    assert!(!top.contains("__keep"), "{top}");
    assert!(top.contains("Global options:"), "{top}");
    let stop = help(&["stop"]);
    assert!(stop.contains("SECONDS") && stop.contains("Seconds to wait"), "{stop}");
    for sub in [&["run"][..], &["ps"], &["network", "ls"], &["attach"], &["logs"], &["rm"]] {
        let h = help(sub);
        assert!(h.contains("Global options:"), "{sub:?}: {h}");
    }
    // Optional flags stay in brackets on the usage line.
    let run = help(&["run"]);
    let usage = run.lines().find(|l| l.starts_with("Usage:")).unwrap();
    assert!(usage.contains("[OPTIONS]") && usage.contains("--network <NETWORK>"), "{usage}");
    assert!(!usage.contains(" --ip "), "{usage}");
}
