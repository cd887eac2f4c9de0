//! `underlay-host-access`'s config (master, address, dataDir), environment and
//! prevResult in every version: one JSON answer, never a panic.
#![no_main]

#[path = "harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;
use underlay::cni::plugin::{Call, Plugin};
use underlay::cni::{CniError, CniResult};

struct Parser;

impl Plugin for Parser {
    fn add(&self, call: &Call) -> Result<CniResult, CniError> {
        host_access::check_input(call)?;
        harness::prev_result(call)
    }
    fn del(&self, call: &Call) -> Result<(), CniError> {
        host_access::check_input(call)?;
        call.prev_result().map(drop)
    }
    fn check(&self, call: &Call) -> Result<(), CniError> {
        host_access::check_input(call)
    }
    fn status(&self, call: &Call) -> Result<(), CniError> {
        host_access::check_input(call)
    }
    fn gc(&self, call: &Call) -> Result<(), CniError> {
        call.conf.valid_attachments().map(drop)
    }
}

fuzz_target!(|data: &[u8]| harness::drive(&Parser, data));
