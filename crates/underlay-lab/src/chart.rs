//! The benchmark as an SVG bar chart: throughput and median round trip per path,
//! coloured by kind. SVG is a small text format; writing it takes fewer lines than
//! configuring a plotting library.

use std::fmt::Write as _;

use super::measured::{Kind, Measured};

const WIDTH: f64 = 960.0;
const LABEL: f64 = 300.0;
const BAR: f64 = 520.0;
const ROW: f64 = 24.0;

fn colour(kind: Kind) -> &'static str {
    match kind {
        Kind::Host => "#9e9e9e",
        Kind::Macvlan => "#1f77b4",
        Kind::Ipvlan => "#2ca02c",
        Kind::BridgeNat => "#d95f02",
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// One panel: a title and a bar per row; returns the height used.
fn panel(
    svg: &mut String,
    top: f64,
    title: &str,
    rows: &[Measured],
    value: impl Fn(&Measured) -> f64,
    unit: &str,
) -> f64 {
    let max = rows.iter().map(&value).fold(f64::MIN_POSITIVE, f64::max);
    let _ =
        writeln!(svg, r#"<text x="10" y="{}" font-size="15" font-weight="bold">{}</text>"#, top + 18.0, escape(title));
    for (i, r) in rows.iter().enumerate() {
        let y = top + 30.0 + i as f64 * ROW;
        let v = value(r);
        let w = (v / max * BAR).max(1.0);
        let label = format!("{} · {}", r.group, r.path);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" font-size="12" text-anchor="end">{}</text>"#,
            LABEL - 8.0,
            y + 15.0,
            escape(&label)
        );
        let _ = writeln!(
            svg,
            r#"<rect x="{LABEL}" y="{}" width="{w:.1}" height="{}" fill="{}"><title>{} {v:.2} {unit}</title></rect>"#,
            y + 3.0,
            ROW - 6.0,
            colour(r.kind),
            escape(r.kind.label())
        );
        let _ =
            writeln!(svg, r#"<text x="{:.1}" y="{}" font-size="12">{v:.2} {unit}</text>"#, LABEL + w + 6.0, y + 15.0);
    }
    30.0 + rows.len() as f64 * ROW + 20.0
}

pub fn svg(rows: &[Measured]) -> String {
    let height = 2.0 * (50.0 + rows.len() as f64 * ROW) + 60.0;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
"#
    );
    let mut top = 10.0;
    top += panel(&mut svg, top, "TCP throughput (Gbit/s, higher is better)", rows, |r| r.gbit_per_s, "Gbit/s");
    top += panel(&mut svg, top, "TCP round trip, median (µs, lower is better)", rows, |r| r.p50_us, "µs");
    let mut x = 10.0;
    for kind in [Kind::Macvlan, Kind::Ipvlan, Kind::BridgeNat, Kind::Host] {
        if !rows.iter().any(|r| r.kind == kind) {
            continue;
        }
        let _ = writeln!(svg, r#"<rect x="{x}" y="{}" width="14" height="14" fill="{}"/>"#, top + 4.0, colour(kind));
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" font-size="12">{}</text>"#,
            x + 20.0,
            top + 15.0,
            escape(kind.label())
        );
        x += 160.0;
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_gets_a_bar_in_each_panel() {
        let rows = vec![
            Measured {
                group: "g",
                kind: Kind::Macvlan,
                path: "a → b".into(),
                gbit_per_s: 10.0,
                p50_us: 20.0,
                p99_us: 30.0,
            },
            Measured {
                group: "g",
                kind: Kind::BridgeNat,
                path: "c <x> d".into(),
                gbit_per_s: 5.0,
                p50_us: 40.0,
                p99_us: 50.0,
            },
        ];
        let s = svg(&rows);
        assert_eq!(s.matches("<rect x=\"300\"").count(), 4);
        assert!(s.contains("c &lt;x&gt; d") && !s.contains("<x>"));
        assert!(s.contains("width=\"520.0\""), "the largest value spans the whole bar");
    }
}
