//! A picture of the lab: Graphviz DOT, rendered to SVG when `dot` is installed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use super::record::Lab;

/// The seed's container and its address (the first of the seed's range).
pub const CONTAINER: &str = "container1";
pub const CONTAINER_IP: &str = "192.168.1.100";

/// The lab as DOT text: the switch, its hosts, and each node's macvlan children.
pub fn dot(lab: &Lab, container_mac: Option<&str>) -> String {
    let r = &lab.record;
    let mut d = String::from(
        "graph underlay_lab {\n  graph [fontname=\"sans-serif\", labelloc=t, label=\"underlay lab: the seed's LAN, 192.168.1.0/24\"];\n  node [shape=box, fontname=\"sans-serif\", fontsize=10];\n  edge [fontname=\"sans-serif\", fontsize=9];\n",
    );
    let mut switch = String::from("switch (Linux bridge)");
    if r.hairpin {
        switch += "\\nhairpin on every port";
    }
    if r.drop_unknown_macs {
        switch += "\\ndrops unknown MACs";
    }
    let _ = writeln!(d, "  switch [shape=ellipse, label=\"{switch}\"];");
    let _ = writeln!(d, "  gw [label=\"gateway\\n192.168.1.1\"];\n  ext [label=\"external device\\n192.168.1.9\"];");
    let _ = writeln!(d, "  switch -- gw;\n  switch -- ext;");
    for n in 0..r.nodes {
        let id = n + 1;
        let _ = writeln!(
            d,
            "  subgraph cluster_node{id} {{\n    label=\"node{id} ({})\";",
            r.prefix.clone() + &format!("-node{id}")
        );
        let _ = writeln!(
            d,
            "    node{id}_nic [label=\"enp0s3\\n192.168.1.{}\", style=filled, fillcolor=\"#e8e8e8\"];",
            10 + n
        );
        for p in r.pods_of(n) {
            let _ = writeln!(d, "    {0} [label=\"{0} (CNI)\\n{1}\\n{2}\"];", p.role, p.ip, p.mac);
            let _ = writeln!(d, "    {} -- node{id}_nic [label=\"macvlan bridge\"];", p.role);
        }
        if n == 0 {
            let mac = container_mac.unwrap_or("");
            let _ = writeln!(d, "    {CONTAINER} [label=\"{CONTAINER} (underlay run)\\n{CONTAINER_IP}\\n{mac}\"];");
            let _ = writeln!(d, "    {CONTAINER} -- node{id}_nic [label=\"macvlan bridge\"];");
        }
        let _ = writeln!(d, "  }}\n  switch -- node{id}_nic [label=\"p-node{id}\"];");
    }
    d.push_str("}\n");
    d
}

/// Writes `underlay-lab-topology.dot` into `out`, and the SVG beside it when `dot` is
/// installed; returns the picture's path (the SVG, else the DOT). `mac`: container1's,
/// when it is running.
pub fn write(lab: &Lab, out: &Path, mac: Option<String>) -> Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let dot_path = out.join("underlay-lab-topology.dot");
    std::fs::write(&dot_path, dot(lab, mac.as_deref())).with_context(|| format!("write {}", dot_path.display()))?;
    let svg = out.join("underlay-lab-topology.svg");
    let rendered = Command::new("dot")
        .arg("-Tsvg")
        .arg("-o")
        .arg(&svg)
        .arg(&dot_path)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    Ok(if rendered { svg } else { dot_path })
}
