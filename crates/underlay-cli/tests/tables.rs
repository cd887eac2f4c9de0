//! Listings as scripts and people read them: plain columns that `awk` splits when
//! stdout is not a terminal, a table fitted to the terminal's width when it is, `-q`
//! for IDs, and `--format` templates of the table's fields.

mod support;

use std::io::Write;
use std::process::Stdio;

use support::*;
use underlay_linux::world::WorldSpec;

/// `underlay ARGS | awk PROGRAM`, as a user's script would run it.
fn awk(u: &Underlay, args: &[&str], program: &str) -> String {
    let out = u.run(args).ok().stdout.clone();
    let mut awk = std::process::Command::new("awk")
        .arg(program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("awk (mawk, from scripts/deps)");
    awk.stdin.take().unwrap().write_all(out.as_bytes()).unwrap();
    String::from_utf8(awk.wait_with_output().unwrap().stdout).unwrap()
}

#[test]
fn listings_for_scripts_and_for_terminals() {
    let w = world(WorldSpec::seed("c19tab").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.lan_with_web();
    // Not a terminal: no box drawing, one line per row, columns split on blanks.
    let ps = u.run(&["ps"]).ok().stdout.clone();
    assert!(!ps.contains('│') && !ps.contains('─'), "{ps}");
    assert_eq!(awk(&u, &["ps"], "{print $1, $4, $6}"), "NAME ADDRESSES STATUS\nweb 192.168.1.100 running\n");
    assert_eq!(awk(&u, &["network", "ls"], "NR > 1 {print $1, $3, $6, $7, $8}"), "lan macvlan 192.168.1.0/24 1 off\n");
    // -q: IDs that name the item.
    let ids = u.run(&["ps", "-q"]).ok().stdout.clone();
    assert_eq!(ids.lines().count(), 1, "{ids}");
    assert_eq!(u.run(&["inspect", ids.trim()]).ok().json()[0]["name"], "web");
    let nets = u.run(&["network", "ls", "-q"]).ok().stdout.clone();
    assert_eq!(u.run(&["network", "inspect", nets.trim()]).ok().json()[0]["name"], "lan");
    // Templates of the table's fields; an unknown field is named (exit 2).
    assert_eq!(u.run(&["ps", "--format", "{{.Name}} {{.IP}}"]).ok().stdout, "web 192.168.1.100\n");
    assert_eq!(u.run(&["network", "ls", "--format", "{{.Name}}\\t{{.Endpoints}}"]).ok().stdout, "lan\t1\n");
    let out = u.run(&["ps", "--format", "{{.Name}} {{.Adress}}"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("unknown field \".Adress\"") && out.stderr.contains("IP"), "{}", out.stderr);
    // A terminal 60 columns wide: the table fits.
    let cmd = format!(
        "stty cols 60; {} --state-dir {} --run-dir {} ps",
        env!("CARGO_BIN_EXE_underlay"),
        u.state_dir().display(),
        u.run_dir().display()
    );
    let tty = u.node.command("script").args(["-qec", &cmd, "/dev/null"]).stdin(Stdio::null()).output().unwrap();
    let text = String::from_utf8_lossy(&tty.stdout);
    assert!(text.contains('│') && text.contains("web"), "{text}");
    for line in text.lines() {
        assert!(line.trim_end_matches('\r').chars().count() <= 60, "wider than 60: {line:?}\n{text}");
    }
    // Errors on a terminal are wrapped to its width; the words are all there.
    let cmd = format!(
        "stty cols 40; {} --state-dir {} --run-dir {} stop no-such-endpoint-with-a-long-name",
        env!("CARGO_BIN_EXE_underlay"),
        u.state_dir().display(),
        u.run_dir().display()
    );
    let tty = u.node.command("script").args(["-qec", &cmd, "/dev/null"]).stdin(Stdio::null()).output().unwrap();
    let text = String::from_utf8_lossy(&tty.stdout).replace('\r', "");
    assert!(text.contains("no-such-endpoint-with-a-long-name") && text.contains("underlay ps -a"), "{text}");
    assert!(text.lines().count() >= 3 && text.lines().all(|l| l.chars().count() <= 40), "{text}");
    u.run(&["stop", "web"]).ok();
}
