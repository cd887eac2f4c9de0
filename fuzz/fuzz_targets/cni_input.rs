//! Feeds arbitrary environment + stdin to the CNI runner: env lines `K=V` up to a NUL
//! byte, the rest is the config. Whatever comes in, the runner must answer with one
//! JSON document (a result or a CNI error) and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use underlay::cni::plugin::{Call, Plugin, run};
use underlay::cni::{CniError, CniResult, NetConf, Version};

/// Exercises the parsing a real plugin does: typed config (the common keys, macvlan's,
/// host-local's), prevResult in any version, the GC attachment list, and result
/// conversion to every version.
struct Parser;

impl Plugin for Parser {
    fn add(&self, call: &Call) -> Result<CniResult, CniError> {
        let _: NetConf = call.conf_as()?;
        call.conf.ipam_type()?;
        let _ = underlay_attach::Conf::parse(call, underlay_attach::Driver::Macvlan);
        let _ = underlay_attach::Conf::parse(call, underlay_attach::Driver::Ipvlan);
        let _ = underlay::ipam::HostLocalConf::parse(&call.raw, call.version, &call.env.args);
        call.env.args.check_known(&["IP", "MAC"])?;
        let prev = call.prev_result()?.unwrap_or_default();
        for &v in Version::ALL {
            let json = prev.to_json(v);
            let (back, _) = CniResult::from_json(&json, v)?;
            assert_eq!(back.to_json(v), json, "conversion must be stable");
        }
        Ok(prev)
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

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let (env, stdin) = data.split_at(split);
    let stdin = stdin.get(1..).unwrap_or_default();
    let vars: Vec<(String, String)> = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let reply = run(&Parser, vars, stdin);
    if !reply.stdout.is_empty() {
        let v: serde_json::Value = serde_json::from_slice(&reply.stdout).expect("stdout is JSON");
        if reply.exit_code != 0 {
            assert!(v.get("code").is_some() && v.get("msg").is_some(), "error shape: {v}");
        }
    }
});
