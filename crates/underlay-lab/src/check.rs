//! `lab check`: each testable claim of the seed, run in the lab, as a table row — the
//! seed's section, the claim, what should happen, what did, and the verdict. Where the
//! seed is wrong or incomplete, the row's note says so.

use std::time::Instant;

use anyhow::Result;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use super::claim::{Claim, Ctx, Outcome};
use super::record::Lab;
use super::{attach, build, dhcp, interrupt, isolation, modes};
use underlay_cli::output::{Format, print_json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Skipped,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub section: &'static str,
    pub claim: &'static str,
    pub expected: String,
    pub observed: String,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Every claim, in the seed's order.
fn claims() -> Vec<Claim> {
    let mut all = Vec::new();
    all.extend(attach::CLAIMS);
    all.extend(dhcp::CLAIMS);
    all.extend(isolation::CLAIMS);
    all.extend(modes::CLAIMS);
    all
}

pub fn run(lab: &Lab) -> Result<Vec<Row>> {
    let t = Instant::now();
    let world = lab.world()?;
    let (container, container_ip, container_mac) = build::container(lab, &world)?;
    let mut ctx = Ctx { lab, world, container, container_ip, container_mac };
    let mut rows = Vec::new();
    eprintln!("Checking the seed's claims in lab \"{}\":", lab.record.name);
    for (section, claim, f) in claims() {
        interrupt::check()?;
        let outcome = f(&mut ctx).unwrap_or_else(|e| Outcome::new("", format!("error: {e:#}"), false));
        let verdict = match outcome.ok {
            Some(true) => Verdict::Pass,
            Some(false) => Verdict::Fail,
            None => Verdict::Skipped,
        };
        eprintln!("  {:>5.1}s  {} {claim}", t.elapsed().as_secs_f64(), mark(verdict));
        rows.push(Row {
            section,
            claim,
            expected: outcome.expected,
            observed: outcome.observed,
            verdict,
            note: outcome.note,
        });
    }
    Ok(rows)
}

fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✓",
        Verdict::Fail => "✗",
        Verdict::Skipped => "–",
    }
}

pub fn passed(rows: &[Row]) -> bool {
    rows.iter().all(|r| r.verdict != Verdict::Fail)
}

pub fn print(rows: &[Row], format: Format) {
    if format == Format::Json {
        return print_json(rows);
    }
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(terminal_width())
        .set_header(["seed §", "claim", "expected", "observed", ""]);
    let mut notes = Vec::new();
    for r in rows {
        let mut claim = r.claim.to_string();
        if let Some(n) = &r.note {
            notes.push(n.clone());
            claim += &format!(" [{}]", notes.len());
        }
        t.add_row([r.section.to_string(), claim, r.expected.clone(), r.observed.clone(), mark(r.verdict).to_string()]);
    }
    println!("{t}");
    for (i, n) in notes.iter().enumerate() {
        println!("[{}] {n}", i + 1);
    }
    let count = |v| rows.iter().filter(|r| r.verdict == v).count();
    println!(
        "{} claims: {} ✓, {} ✗, {} skipped",
        rows.len(),
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Skipped)
    );
}

/// Stdout's width; not a terminal (or a very narrow one): 160.
fn terminal_width() -> u16 {
    match console::Term::stdout().size_checked() {
        Some((_, cols)) if cols > 40 => cols,
        _ => 160,
    }
}
