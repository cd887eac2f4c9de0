//! What went wrong, and the exit code that says so (see the README's table).

use std::fmt;

/// Exit codes of `underlay` (`run` exits with its command's own code instead).
pub mod exit {
    /// Something failed that is not one of the cases below.
    pub const FAILED: u8 = 1;
    /// The command line was wrong (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// A network or endpoint named does not exist.
    pub const NOT_FOUND: u8 = 3;
    /// It would clash with what exists: a duplicate name, an overlapping subnet, a
    /// network still in use, an address taken.
    pub const CONFLICT: u8 = 4;
    /// The kernel or the system refused (missing feature, netlink error, permissions).
    pub const SYSTEM: u8 = 5;
    /// `run`: underlay failed before the command started (Docker uses the same codes).
    pub const RUN_FAILED: u8 = 125;
    pub const RUN_CANNOT_EXEC: u8 = 126;
    pub const RUN_NOT_FOUND: u8 = 127;
}

#[cfg(test)]
mod tests {
    #[test]
    fn plugin_words_become_ours() {
        use super::in_cli_words as w;
        assert_eq!(w("master enp0s3 is down"), "parent enp0s3 is down");
        assert_eq!(w("mtu 0 (the master's)"), "mtu 0 (the parent's)");
        assert_eq!(w("CNI_ARGS MAC=\"x\": bad"), "--mac-address \"x\": bad");
        assert_eq!(w("remastered masterful"), "remastered masterful");
    }
}

#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

pub type Result<T, E = Failure> = std::result::Result<T, E>;

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into(), hint: None }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(exit::USAGE, message)
    }

    pub fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(exit::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Failure {
        Failure::new(exit::CONFLICT, message)
    }

    pub fn system(message: impl Into<String>) -> Failure {
        Failure::new(exit::SYSTEM, message)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

impl Failure {
    /// Prints "underlay: MESSAGE" (and the hint) on stderr, wrapped to the terminal's
    /// width when stderr is one (whole lines otherwise, for scripts that grep).
    pub fn eprint(&self) {
        let text = format!("underlay: {self}");
        match crate::terminal::width(&std::io::stderr()) {
            Some(w) if std::io::IsTerminal::is_terminal(&std::io::stderr()) => {
                eprintln!("{}", crate::terminal::wrap(&text, w))
            }
            _ => eprintln!("{text}"),
        }
    }
}

/// A plugin's message in this command's words: its "master" is our parent, its
/// `CNI_ARGS` fields our flags.
pub fn in_cli_words(msg: &str) -> String {
    let flags = msg
        .replace("CNI_ARGS MAC=", "--mac-address ")
        .replace("CNI_ARGS MAC", "--mac-address")
        .replace("CNI_ARGS IP=", "--ip ");
    let mut out = String::new();
    let mut rest = flags.as_str();
    while let Some(i) = rest.find("master") {
        let before_ok = rest[..i].chars().last().is_none_or(|c| !c.is_alphanumeric() && c != '_');
        let after_ok = rest[i + 6..].chars().next().is_none_or(|c| !c.is_alphanumeric() && c != '_' || c == 's');
        out.push_str(&rest[..i]);
        out.push_str(if before_ok && after_ok { "parent" } else { "master" });
        rest = &rest[i + 6..];
    }
    out.push_str(rest);
    out
}

/// Runs `f` on each of `items` (the names a command was given), reporting each failure
/// on stderr and going on with the rest, as Docker does. One item: its own failure
/// (and exit code); several: exit 1 at the end if any failed.
pub fn each<T: fmt::Display>(items: &[T], mut f: impl FnMut(&T) -> Result<()>) -> Result<()> {
    if let [one] = items {
        return f(one);
    }
    let mut failed = 0;
    for item in items {
        if let Err(e) = f(item) {
            eprintln!("underlay: {item}: {e}");
            failed += 1;
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(Failure::new(exit::FAILED, format!("{n} of {} failed", items.len()))),
    }
}

impl From<underlay_linux::Error> for Failure {
    fn from(e: underlay_linux::Error) -> Failure {
        Failure::system(e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::system(e.to_string())
    }
}

/// A CNI error from the plugins, with the exit code its CNI code corresponds to.
impl From<underlay::cni::CniError> for Failure {
    fn from(e: underlay::cni::CniError) -> Failure {
        use underlay::cni::code;
        let exit = match e.code {
            code::INVALID_CONFIG | code::UNSUPPORTED_FIELD | code::INVALID_ENV => exit::USAGE,
            code::ADDRESS_TAKEN | code::ADDRESS_CONFLICT | code::POOL_EXHAUSTED | code::IFNAME_TAKEN => exit::CONFLICT,
            _ => exit::SYSTEM,
        };
        Failure::new(exit, in_cli_words(&e.msg))
    }
}
