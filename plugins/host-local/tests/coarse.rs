//! The owner index on a file system with coarse timestamps (ramfs, in a private mount
//! namespace), the reference plugin writing in the same clock tick as ours: 100 rounds.

mod support;

use std::process::Command;

use support::*;

/// Each round: ours ADDs `a`, the reference ADDs `b` right after (same tick), ours ADDs
/// `b` again (must find the reference's reservation), then ours DELs both.
const ROUNDS: &str = r#"
set -u
mount -t ramfs none "$DATA" || exit 90
conf='{"cniVersion":"1.0.0","name":"coarse","type":"macvlan","ipam":{"type":"host-local","subnet":"10.7.0.0/16","dataDir":"'"$DATA"'"}}'
cni() { echo "$conf" | CNI_COMMAND=$2 CNI_CONTAINERID=$3 CNI_NETNS=/nonexistent CNI_IFNAME=eth0 CNI_PATH=/nonexistent "$1" >/dev/null; }
double=0
# Records are "<container id>\r\n<ifname>" (the reference's format since 0.8).
cr=$(printf '\r')
for i in $(seq 1 100); do
  cni "$OURS" ADD a$i; cni "$REF" ADD b$i; cni "$OURS" ADD b$i
  held=$(grep -l -E "^b$i($cr)?\$" "$DATA"/coarse/[0-9]* 2>/dev/null | wc -l)
  [ "$held" -lt 1 ] && { echo "round $i: b$i holds no address"; exit 91; }
  [ "$held" -gt 1 ] && double=$((double + 1))
  cni "$OURS" DEL a$i; cni "$OURS" DEL b$i
done
left=$(ls "$DATA"/coarse | grep -c '^[0-9]')
echo "double=$double left=$left"
"#;

#[test]
fn reference_writes_in_the_same_tick_are_seen() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", ROUNDS])
        .env("DATA", data.path())
        .env("OURS", ours())
        .env("REF", reference())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    eprintln!("coarse-timestamp rounds: {text}");
    assert_eq!(text.trim(), "double=0 left=0", "containers with two addresses / files left after DEL");
}

#[test]
fn a_record_rewritten_in_place_is_freed_by_its_new_owner() {
    use std::io::Write;
    let data = tempfile::tempdir().unwrap();
    let c = conf("1.0.0", "inplace", data.path(), serde_json::json!({"subnet": "10.1.0.0/24"}));
    let ip = ip_of(&run(&ours(), "ADD", "c1", &c));
    let record = data.path().join("inplace").join(&ip);
    let dir_before = std::fs::metadata(data.path().join("inplace")).unwrap();
    // Rewritten in place in the pre-0.8 format (container ID only): same inode, and the
    // directory's timestamps do not change.
    let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(&record).unwrap();
    f.write_all(b"c2").unwrap();
    drop(f);
    let dir_after = std::fs::metadata(data.path().join("inplace")).unwrap();
    assert_eq!(dir_before.modified().unwrap(), dir_after.modified().unwrap());
    assert!(run(&ours(), "DEL", "c2", &c).ok);
    assert!(!record.exists(), "DEL of the record's owner must free it");
}
