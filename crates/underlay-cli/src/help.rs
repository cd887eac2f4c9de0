//! Checks on the command line's own description: every argument of every subcommand
//! says what it is (the tests walk `underlay`'s and `underlay-lab`'s trees with this).

/// The arguments without help text, as "underlay network ls --quiet", walking every
/// subcommand (hidden ones too: `--help` of an internal command is still read).
pub fn undescribed(cmd: &clap::Command) -> Vec<String> {
    let mut out = Vec::new();
    walk(cmd, cmd.get_name(), &mut out);
    out
}

fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        let builtin = matches!(arg.get_id().as_str(), "help" | "version");
        if !builtin && !arg.is_hide_set() && arg.get_help().is_none() && arg.get_long_help().is_none() {
            let name = arg.get_long().map(|l| format!("--{l}")).unwrap_or_else(|| arg.get_id().to_string());
            out.push(format!("{path} {name}"));
        }
    }
    for sub in cmd.get_subcommands() {
        walk(sub, &format!("{path} {}", sub.get_name()), out);
    }
}
