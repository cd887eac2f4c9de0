//! Tables for people, JSON for scripts.

use comfy_table::Table;
use comfy_table::presets::UTF8_FULL_CONDENSED;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED).set_header(header.to_vec());
    for r in rows {
        t.add_row(r);
    }
    println!("{t}");
}

pub fn print_json<T: serde::Serialize + ?Sized>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).expect("output serializes"));
}
