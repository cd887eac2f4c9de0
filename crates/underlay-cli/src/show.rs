//! `underlay ps` and `underlay inspect`.

use crate::failure::Result;
use crate::model::{Endpoint, Phase};
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
    let eps = State::lock(dirs)?.endpoints()?;
    match format {
        Format::Json => print_json(&eps),
        Format::Table => {
            let rows = eps.iter().map(|e| {
                let ips: Vec<String> = e.ips.iter().map(|i| i.to_string()).collect();
                vec![
                    e.name.clone(),
                    e.id[..12].to_string(),
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
