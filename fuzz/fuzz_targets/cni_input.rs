//! macvlan's and ipvlan's config (with host-local's `ipam` section), environment,
//! CNI_ARGS, prevResult in every version and the GC attachment list, through the CNI
//! runner: one JSON answer, never a panic.
#![no_main]

#[path = "harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;
use underlay::cni::plugin::{Call, Plugin};
use underlay::cni::{CniError, CniResult, NetConf};

struct Parser;

impl Plugin for Parser {
    fn add(&self, call: &Call) -> Result<CniResult, CniError> {
        let _: NetConf = call.conf_as()?;
        call.conf.ipam_type()?;
        let _ = underlay_attach::Conf::parse(call, underlay_attach::Driver::Macvlan);
        let _ = underlay_attach::Conf::parse(call, underlay_attach::Driver::Ipvlan);
        let _ = underlay::ipam::HostLocalConf::parse(&call.raw, call.version, &call.env.args);
        call.env.args.check_known(&["IP", "MAC"])?;
        harness::prev_result(call)
    }
    fn del(&self, call: &Call) -> Result<(), CniError> {
        call.prev_result().map(drop)
    }
    fn check(&self, call: &Call) -> Result<(), CniError> {
        call.prev_result().map(drop)
    }
    fn status(&self, _: &Call) -> Result<(), CniError> {
        Ok(())
    }
    fn gc(&self, call: &Call) -> Result<(), CniError> {
        call.conf.valid_attachments().map(drop)
    }
}

fuzz_target!(|data: &[u8]| harness::drive(&Parser, data));
