//! A plugin run by hand (no `CNI_COMMAND`, or `--version`) says what it is on stderr and
//! exits 0 without reading stdin, as the reference plugins do: every plugin the package
//! ships (contrib/cni-plugins), side by side with the reference's macvlan.

use std::path::Path;
use std::process::{Command, Stdio};

fn plugins() -> Vec<String> {
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/cni-plugins");
    let list = std::fs::read_to_string(list).unwrap();
    list.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect()
}

/// (exit code, stdout, stderr); stdin stays open and empty-handed: a plugin that
/// waited for it would hang the test, not pass it.
fn by_hand(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(bin)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn every_plugin_prints_its_name_and_version_when_run_by_hand() {
    let dir = Path::new(env!("CARGO_BIN_EXE_macvlan")).parent().unwrap().to_path_buf();
    let version = env!("CARGO_PKG_VERSION");
    for name in plugins() {
        let bin = dir.join(&name);
        assert!(bin.exists(), "{} missing: build the workspace (cargo test --workspace)", bin.display());
        for (args, env) in [(&[][..], &[][..]), (&["--version"][..], &[("CNI_COMMAND", "ADD")][..])] {
            let (code, stdout, stderr) = by_hand(&bin, args, env);
            assert_eq!(code, 0, "{name} {args:?}: {stderr}");
            assert_eq!(stdout, "", "{name}: stdout is the runtime's");
            assert!(stderr.starts_with(&format!("CNI {name} plugin v{version} (underlay)\n")), "{name}: {stderr}");
            assert!(stderr.contains("CNI protocol versions supported: 0.1.0,"), "{name}: {stderr}");
        }
    }
    // The reference's shape, for comparison (same two lines, its own version).
    let (code, _, stderr) = by_hand(Path::new("/usr/lib/cni/macvlan"), &[], &[]);
    assert_eq!(code, 0);
    assert!(stderr.starts_with("CNI macvlan plugin ") && stderr.contains("\nCNI protocol versions supported: "));
}
