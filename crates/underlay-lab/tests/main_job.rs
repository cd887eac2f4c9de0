//! The README's main job, `scripts/lab`, builds only some binaries: every one the lab
//! (or `underlay lab`) starts from beside its own executable must be among them, or a
//! fresh machine fails the claims that need it (the DHCP claim once did: `dhcp` was
//! built by the tests, never by `scripts/lab`).

use std::path::Path;

#[test]
fn scripts_lab_builds_every_binary_the_lab_runs_beside_itself() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = std::fs::read_to_string(root.join("scripts/lab")).unwrap();
    let built: Vec<&str> = script
        .lines()
        .filter(|l| l.trim_start().starts_with("cargo build"))
        .flat_map(|l| l.split("--bin ").skip(1).map(|w| w.split_whitespace().next().unwrap_or("")))
        .collect();
    // The lab's own sources, and `underlay lab`, which starts underlay-lab.
    let mut files: Vec<_> =
        std::fs::read_dir(root.join("crates/underlay-lab/src")).unwrap().map(|e| e.unwrap().path()).collect();
    files.push(root.join("crates/underlay-cli/src/lab.rs"));
    let mut wanted = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        // `current_exe()?.with_file_name("NAME")` and `me.with_file_name("NAME")`: a sibling.
        for part in text.split("with_file_name(\"").skip(1) {
            wanted.push(part.split('"').next().unwrap().to_string());
        }
    }
    assert!(wanted.iter().any(|w| w == "dhcp"), "the scan found the lab's siblings: {wanted:?}");
    let missing: Vec<&String> = wanted.iter().filter(|w| !built.contains(&w.as_str())).collect();
    assert!(missing.is_empty(), "scripts/lab builds {built:?} but the lab also runs {missing:?}");
}
