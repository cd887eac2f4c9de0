//! Tables for people, JSON for scripts, and for listings (`ps`, `network ls`) what
//! Docker users type: `-q` for IDs and `--format` templates of named fields.

use std::io::IsTerminal;
use std::str::FromStr;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

use crate::failure::{Failure, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// A listing's output: a table, JSON, or a template such as `{{.Name}} {{.IP}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
    Template(String),
}

impl FromStr for ListFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<ListFormat, String> {
        match s {
            "table" => Ok(ListFormat::Table),
            "json" => Ok(ListFormat::Json),
            t if t.contains("{{") => Ok(ListFormat::Template(t.to_string())),
            _ => Err("use table, json, or a template of fields such as '{{.Name}} {{.ID}}'".to_string()),
        }
    }
}

/// The options every listing takes.
#[derive(clap::Args, Debug, Clone)]
pub struct ListArgs {
    /// Print only IDs (12 digits: any unique prefix names the item), one a line.
    #[arg(short, long)]
    pub quiet: bool,
    /// table, json, or a template of the table's fields, e.g. '{{.Name}}\t{{.ID}}'
    /// (fields: the column names, capitalized as in the JSON's keys).
    #[arg(long, default_value = "table", value_name = "FORMAT")]
    pub format: ListFormat,
}

/// Rows to list: each column has a template field name and a header.
pub struct Listing {
    pub columns: &'static [(&'static str, &'static str)],
    pub rows: Vec<Vec<String>>,
}

impl Listing {
    /// Prints the listing as `args` asks; `json` makes the JSON form (which carries
    /// every column and more).
    pub fn print(&self, args: &ListArgs, json: impl FnOnce() -> serde_json::Value) -> Result<()> {
        if args.quiet {
            let id = self.column("ID")?;
            self.rows.iter().for_each(|r| println!("{}", r[id]));
            return Ok(());
        }
        match &args.format {
            ListFormat::Json => print_json(&json()),
            ListFormat::Table => table(&self.columns.iter().map(|c| c.1).collect::<Vec<_>>(), self.rows.clone()),
            ListFormat::Template(t) => {
                let parts = parse_template(t, self.columns)?;
                for r in &self.rows {
                    let line: String = parts
                        .iter()
                        .map(|p| match p {
                            Part::Text(s) => s.as_str(),
                            Part::Field(i) => r[*i].as_str(),
                        })
                        .collect();
                    println!("{line}");
                }
            }
        }
        Ok(())
    }

    fn column(&self, field: &str) -> Result<usize> {
        self.columns.iter().position(|c| c.0 == field).ok_or_else(|| Failure::usage(format!("no {field} column")))
    }
}

#[derive(Debug)]
enum Part {
    Text(String),
    Field(usize),
}

/// `{{.Field}}` (spaces allowed inside the braces) becomes that column; `\t` and `\n`
/// are a tab and a newline, as in Docker's templates. Anything else in braces is an
/// error naming it.
fn parse_template(t: &str, columns: &[(&str, &str)]) -> Result<Vec<Part>> {
    let known = || columns.iter().map(|c| c.0).collect::<Vec<_>>().join(", ");
    let mut parts = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find("{{") {
        parts.push(Part::Text(unescape(&rest[..open])));
        let close = rest[open..]
            .find("}}")
            .ok_or_else(|| Failure::usage(format!("--format: \"{t}\" opens {{{{ without closing it")))?;
        let inner = rest[open + 2..open + close].trim();
        let field = inner.strip_prefix('.').unwrap_or(inner);
        let i = columns.iter().position(|c| c.0 == field).ok_or_else(|| {
            Failure::usage(format!("--format: unknown field \"{inner}\"")).hint(format!("fields: {}", known()))
        })?;
        parts.push(Part::Field(i));
        rest = &rest[open + close + 2..];
    }
    parts.push(Part::Text(unescape(rest)));
    Ok(parts)
}

fn unescape(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

/// A table: boxed and fitted to the terminal's width on a terminal; elsewhere (a pipe,
/// a file) plain columns that `awk` and `cut` split (an empty cell shows as "-").
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let rows: Vec<Vec<String>> = rows.into_iter().collect();
    if !std::io::stdout().is_terminal() {
        print!("{}", plain(header, &rows));
        return;
    }
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED).set_header(header.to_vec());
    if let Some(w) = crate::terminal::width(&std::io::stdout()) {
        t.set_content_arrangement(ContentArrangement::Dynamic).set_width(w.min(u16::MAX.into()) as u16);
    }
    for r in rows {
        t.add_row(r);
    }
    println!("{t}");
}

/// Aligned columns, three spaces apart, no trailing blanks.
fn plain(header: &[&str], rows: &[Vec<String>]) -> String {
    let cell = |s: &str| if s.is_empty() { "-".to_string() } else { s.replace('\n', " ") };
    let all: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(rows.iter().map(|r| r.iter().map(|c| cell(c)).collect()))
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| all.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count())).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &all {
        let line: Vec<String> = r.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

pub fn print_json<T: serde::Serialize + ?Sized>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).expect("output serializes"));
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &[(&str, &str)] = &[("Name", "NAME"), ("ID", "ID"), ("IP", "ADDRESSES")];

    #[test]
    fn plain_tables_split_on_blanks() {
        let rows = vec![
            vec!["web".into(), "abc".into(), "".into()],
            vec!["a-much-longer-name".into(), "d".into(), "10.0.0.2".into()],
        ];
        let text = plain(&["NAME", "ID", "ADDRESSES"], &rows);
        let fields: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(
            fields,
            [vec!["NAME", "ID", "ADDRESSES"], vec!["web", "abc", "-"], vec!["a-much-longer-name", "d", "10.0.0.2"]]
        );
        assert!(!text.contains('│'));
    }

    #[test]
    fn templates_name_fields() {
        let parts = parse_template("{{.Name}}\\t{{ .IP }}!", COLUMNS).unwrap();
        assert_eq!(parts.len(), 5);
        let e = parse_template("{{.Nmae}}", COLUMNS).unwrap_err();
        assert_eq!(e.code, crate::failure::exit::USAGE);
        assert!(e.message.contains("Nmae") && e.hint.unwrap().contains("Name"));
        assert!(parse_template("{{.Name", COLUMNS).is_err());
        assert!("nonsense".parse::<ListFormat>().is_err());
    }
}
