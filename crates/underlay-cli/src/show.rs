//! `underlay ps` and `underlay inspect`.

use crate::failure::{Result, each};
use crate::model::{Endpoint, Phase, short};
use crate::output::{ListArgs, Listing, print_json};
use crate::state::{Dirs, State};

/// What an endpoint is doing, in one word (so a plain table splits on blanks).
pub fn status(e: &Endpoint) -> String {
    match (e.phase, e.process, e.keeper) {
        (Phase::Exited, _, _) => format!("exited({})", e.exit_code.unwrap_or_default()),
        (Phase::Attaching, _, Some(k)) if k.alive() => "attaching".into(),
        (Phase::Attaching, _, _) => "stale".into(),
        (_, Some(p), _) if p.alive() => "running".into(),
        (_, Some(_), _) => "exited".into(),
        (_, None, _) if std::path::Path::new(&e.netns).exists() => "attached".into(),
        _ => "stale".into(),
    }
}

/// The columns of `ps`: template field and header.
const COLUMNS: &[(&str, &str)] = &[
    ("Name", "NAME"),
    ("ID", "ID"),
    ("Network", "NETWORK"),
    ("IP", "ADDRESSES"),
    ("MAC", "MAC"),
    ("Status", "STATUS"),
    ("Command", "COMMAND"),
];

pub fn ps(dirs: &Dirs, all: bool, args: &ListArgs) -> Result<()> {
    let state = State::lock(dirs)?;
    let mut eps = state.endpoints()?;
    eps.retain(|e| all || e.phase != Phase::Exited);
    let rows = eps
        .iter()
        .map(|e| {
            // Addresses without their prefix length, comma-separated with no blank.
            let ips: Vec<String> = e.ips.iter().map(|i| i.addr().to_string()).collect();
            vec![
                e.name.clone(),
                short(&e.id, 12).to_string(),
                e.network.clone(),
                ips.join(","),
                e.mac.map(|m| m.to_string()).unwrap_or_default(),
                status(e),
                e.command.join(" "),
            ]
        })
        .collect();
    Listing { columns: COLUMNS, rows }.print(args, || {
        // The record, plus what the table shows; damaged records are listed too, as
        // {"damaged": PATH, "error": WHY}.
        let mut out = crate::state::with_damaged(&eps, state.damaged().unwrap_or_default(), "endpoints");
        for (v, e) in out.iter_mut().zip(&eps) {
            v["status"] = serde_json::json!(status(e));
        }
        serde_json::Value::Array(out)
    })
}

/// Prints the endpoints named (those found, as one JSON array); each one not found is
/// reported.
pub fn inspect(dirs: &Dirs, names: &[String]) -> Result<()> {
    let state = State::lock(dirs)?;
    let mut found = Vec::new();
    let result = each(names, |n| {
        let e = state.endpoint(n)?;
        let mut v = serde_json::to_value(&e).expect("records serialize");
        v["status"] = serde_json::json!(status(&e));
        found.push(v);
        Ok(())
    });
    if !found.is_empty() {
        print_json(&found);
    }
    result
}
