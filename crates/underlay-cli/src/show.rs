//! `underlay ps` and `underlay inspect`.

use crate::failure::Result;
use crate::model::{Endpoint, Phase, short};
use crate::output::{Format, print_json, table};
use crate::state::{Dirs, State};

/// What an endpoint is doing, in one word.
pub fn status(e: &Endpoint) -> String {
    match (e.phase, e.process, e.keeper) {
        (Phase::Attaching, _, Some(k)) if k.alive() => "attaching".into(),
        (Phase::Attaching, _, _) => "stale".into(),
        (_, Some(p), _) if p.alive() => format!("running ({})", p.pid),
        (_, Some(_), _) => "exited".into(),
        (_, None, _) if std::path::Path::new(&e.netns).exists() => "attached".into(),
        _ => "stale".into(),
    }
}

pub fn ps(dirs: &Dirs, format: Format) -> Result<()> {
    let state = State::lock(dirs)?;
    let eps = state.endpoints()?;
    match format {
        // Damaged records are listed too, as {"damaged": PATH, "error": WHY}.
        Format::Json => print_json(&crate::state::with_damaged(&eps, state.damaged()?, "endpoints")),
        Format::Table => {
            let rows = eps.iter().map(|e| {
                let ips: Vec<String> = e.ips.iter().map(|i| i.to_string()).collect();
                vec![
                    e.name.clone(),
                    short(&e.id, 12).to_string(),
                    e.network.clone(),
                    ips.join(", "),
                    e.mac.map(|m| m.to_string()).unwrap_or_default(),
                    status(e),
                    e.command.join(" "),
                ]
            });
            table(&["NAME", "ID", "NETWORK", "ADDRESSES", "MAC", "STATUS", "COMMAND"], rows);
        }
    }
    Ok(())
}

pub fn inspect(dirs: &Dirs, names: &[String]) -> Result<()> {
    let state = State::lock(dirs)?;
    let eps = names.iter().map(|n| state.endpoint(n)).collect::<Result<Vec<_>>>()?;
    print_json(&eps);
    Ok(())
}
