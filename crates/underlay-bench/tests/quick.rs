//! Every benchmark, run once with `--quick`: they are not tests of speed, but they must
//! keep running (a benchmark that no longer builds or starts fails here).

use std::process::Command;

fn quick(bench: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_underlay-bench")).args(["--quick", bench]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "underlay-bench --quick {bench}: {stdout}\n{stderr}");
    stdout.into_owned()
}

#[test]
fn host_local_runs() {
    let out = quick("host-local");
    assert!(out.contains("ref ADD p50") && out.contains("max RSS"), "{out}");
}

#[test]
fn macvlan_runs() {
    let out = quick("macvlan");
    assert!(out.contains("ADD p50") && out.contains("peak memory"), "{out}");
}

#[test]
fn scale_runs() {
    let out = quick("scale");
    assert!(out.contains("live endpoints") && out.contains("floor"), "{out}");
}

#[test]
fn etcd_ipam_runs() {
    let out = quick("etcd-ipam");
    assert!(out.contains("0 duplicates") && out.contains("requests per ADD"), "{out}");
}

#[test]
fn podman_runs() {
    let out = quick("podman");
    assert!(out.contains("network share") && out.contains("netavark"), "{out}");
}

#[test]
fn docker_runs() {
    // Needs underlay-docker-plugin beside underlay-bench (`cargo test --workspace` builds it).
    let out = quick("docker");
    assert!(out.contains("ratio ours/builtin") && out.contains("VmHWM"), "{out}");
}

#[test]
fn cri_runs() {
    // containerd in a test world's node; macvlan and host-local beside underlay-bench.
    let out = quick("cri");
    assert!(
        out.contains("network share") && out.contains("ratio ours/reference") && out.contains("DEL VmHWM"),
        "{out}"
    );
}
