//! `--format json` (and `inspect`) output, pinned. What differs from run to run (IDs,
//! times, MACs, PIDs, temporary paths) is redacted; everything else is the contract.

mod support;

use support::*;
use underlay_linux::world::WorldSpec;

#[test]
fn json_output_is_stable() {
    let w = world(WorldSpec::seed("clijson").nodes(1).pods(0));
    let u = Underlay::on(&w.node(0).netns);
    u.lan(
        "my-macvlan-network",
        &[
            "--ip-range",
            "192.168.1.96/27",
            "--aux-address",
            "router2=192.168.1.97",
            "--mtu",
            "1450",
            "-o",
            "macvlan_mode=bridge",
        ],
    )
    .ok();
    u.run(&[
        "run",
        "--network",
        "my-macvlan-network",
        "--ip",
        "192.168.1.100",
        "-d",
        "--name",
        "container1",
        "--",
        "/bin/busybox",
        "sleep",
        "60",
    ])
    .ok();
    u.wait_running("container1");
    {
        insta::assert_json_snapshot!("network_ls", u.run(&["network", "ls", "--format", "json"]).ok().json(), {
            "[].id" => "[id]", "[].created" => "[time]",
        });
        insta::assert_json_snapshot!("network_inspect", u.run(&["network", "inspect", "my-macvlan-network"]).ok().json(), {
            "[].id" => "[id]", "[].created" => "[time]", "[].endpoints[].id" => "[id]", "[].endpoints[].mac" => "[mac]",
        });
        insta::assert_json_snapshot!("ps", u.run(&["ps", "--format", "json"]).ok().json(), {
            "[].id" => "[id]", "[].created" => "[time]", "[].mac" => "[mac]", "[].netns" => "[netns]",
            "[].keeper" => "[process]", "[].process" => "[process]", "[].cni.ipam.dataDir" => "[dataDir]",
        });
    }
    u.run(&["stop", "container1"]).ok();
}
