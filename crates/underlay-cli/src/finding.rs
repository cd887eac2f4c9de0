//! One thing `doctor` found (or checked and found fine): its check's stable name, how
//! bad it is, what it is, and what to do.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A check that found nothing wrong.
    Ok,
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// A stable name of the check, for scripts.
    pub check: &'static str,
    pub severity: Severity,
    pub finding: String,
    pub fix: String,
}

pub fn finding(check: &'static str, severity: Severity, finding: String, fix: impl Into<String>) -> Finding {
    Finding { check, severity, finding, fix: fix.into() }
}
