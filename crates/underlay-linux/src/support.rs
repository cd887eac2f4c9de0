//! What this kernel can do. Some kernels (this project's CI among them) are built
//! without ipvlan or 802.1Q; callers ask here and report a skip or a clear error
//! instead of failing obscurely.

use crate::error::{Errno, Result};
use crate::netlink::Netlink;

/// A link kind this kernel may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Ipvlan,
    Vlan,
    Dummy,
}

impl Feature {
    pub fn name(self) -> &'static str {
        match self {
            Feature::Ipvlan => "ipvlan",
            Feature::Vlan => "802.1Q VLAN",
            Feature::Dummy => "dummy devices",
        }
    }

    /// Why it is missing, in words for a skip message or an error.
    pub fn missing(self) -> String {
        let module = match self {
            Feature::Ipvlan => "ipvlan",
            Feature::Vlan => "8021q",
            Feature::Dummy => "dummy",
        };
        format!("this kernel lacks {} (module {module} not available)", self.name())
    }
}

/// Whether the kernel can create links of this kind: tries once, in a throwaway network
/// namespace of a throwaway thread, on a veth parent.
pub fn has(feature: Feature) -> Result<bool> {
    std::thread::spawn(move || -> Result<bool> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
        let mut nl = Netlink::new()?;
        nl.create_veth("probe0", "probe1", None)?;
        let parent = nl.link("probe0")?.index;
        let made = match feature {
            Feature::Ipvlan => nl.create_ipvlan(&crate::ipvlan::IpvlanSpec {
                name: "probe2",
                parent,
                mode: crate::ipvlan::IpvlanMode::L2,
                flag: crate::ipvlan::IpvlanFlag::Bridge,
                mtu: 0,
                netns: None,
            }),
            Feature::Vlan => nl.create_vlan("probe0.10", parent, 10),
            Feature::Dummy => nl.create_dummy("probe2"),
        };
        match made {
            Ok(()) => Ok(true),
            Err(e) if e.is(Errno::EOPNOTSUPP) || e.is(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
        // The namespace and everything in it go when the thread ends.
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Reports that test `test` was skipped because `feature` is missing: on stderr, and
/// appended to the file `$UNDERLAY_SKIP_LOG` names, which `.ci/run` prints after the
/// suite (a passing test's output is otherwise hidden).
pub fn report_skip(test: &str, feature: Feature) {
    let line = format!("skipped {test}: {}", feature.missing());
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("UNDERLAY_SKIP_LOG") {
        use std::io::Write;
        // One write of the whole line: tests run in parallel, and `writeln!` on a File
        // writes the text and the newline separately, so two lines could interleave.
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}
