//! `underlay-ipam`'s config (etcd endpoints, TLS files, ranges, timeouts), environment,
//! CNI_ARGS and prevResult in every version: one JSON answer, never a panic.
#![no_main]

#[path = "harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;
use underlay::cni::plugin::{Call, Plugin};
use underlay::cni::{CniError, CniResult};

struct Parser;

fn conf(call: &Call) -> Result<(), CniError> {
    underlay_ipam::IpamConf::parse(&call.raw, call.version, &call.env.args).map(drop)
}

impl Plugin for Parser {
    fn add(&self, call: &Call) -> Result<CniResult, CniError> {
        conf(call)?;
        harness::prev_result(call)
    }
    fn del(&self, call: &Call) -> Result<(), CniError> {
        conf(call)
    }
    fn check(&self, call: &Call) -> Result<(), CniError> {
        conf(call)?;
        call.prev_result().map(drop)
    }
    fn status(&self, call: &Call) -> Result<(), CniError> {
        conf(call)
    }
    fn gc(&self, call: &Call) -> Result<(), CniError> {
        conf(call)?;
        call.conf.valid_attachments().map(drop)
    }
}

fuzz_target!(|data: &[u8]| harness::drive(&Parser, data));
