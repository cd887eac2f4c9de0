//! The input split every CNI target uses: environment lines `K=V` up to a NUL byte,
//! the rest is the config on stdin. The runner must answer with one JSON document
//! (a result, or a CNI error with `code` and `msg`) and never panic.

use underlay::cni::plugin::{Plugin, run};

pub fn drive(plugin: &impl Plugin, data: &[u8]) {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let (env, stdin) = data.split_at(split);
    let stdin = stdin.get(1..).unwrap_or_default();
    let vars: Vec<(String, String)> = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let reply = run(plugin, vars, stdin);
    if !reply.stdout.is_empty() {
        let v: serde_json::Value = serde_json::from_slice(&reply.stdout).expect("stdout is JSON");
        if reply.exit_code != 0 {
            assert!(v.get("code").is_some() && v.get("msg").is_some(), "error shape: {v}");
        }
    }
}

/// prevResult in every version, and its conversion to every version and back.
pub fn prev_result(call: &underlay::cni::Call) -> Result<underlay::cni::CniResult, underlay::cni::CniError> {
    use underlay::cni::{CniResult, Version};
    let prev = call.prev_result()?.unwrap_or_default();
    for &v in Version::ALL {
        let json = prev.to_json(v);
        let (back, _) = CniResult::from_json(&json, v)?;
        assert_eq!(back.to_json(v), json, "conversion must be stable");
    }
    Ok(prev)
}
