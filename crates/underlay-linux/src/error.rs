//! One error type for everything that talks to the kernel: what was being done, the
//! errno (so callers can tell "not there" from "failed"), and the kernel's own words.

use std::fmt;
use std::io;

pub use nix::errno::Errno;

#[derive(Debug)]
pub struct Error {
    what: String,
    errno: Option<Errno>,
    detail: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(what: impl Into<String>, detail: impl Into<String>) -> Error {
        Error { what: what.into(), errno: None, detail: detail.into() }
    }

    /// An errno with the kernel's extended-ack message, if it sent one.
    pub fn errno(errno: Errno, kernel_says: Option<String>) -> Error {
        let detail = match kernel_says {
            Some(m) if !m.is_empty() => format!("{} (kernel: {m})", errno.desc()),
            _ => errno.desc().to_string(),
        };
        Error { what: String::new(), errno: Some(errno), detail }
    }

    /// Prefixes what was being done: `create macvlan eth0 on enp0s3: File exists`.
    pub fn context(mut self, what: impl fmt::Display) -> Error {
        self.what = if self.what.is_empty() { what.to_string() } else { format!("{what}: {}", self.what) };
        self
    }

    pub fn code(&self) -> Option<Errno> {
        self.errno
    }

    pub fn is(&self, errno: Errno) -> bool {
        self.errno == Some(errno)
    }

    /// The link, address or route named is not there.
    pub fn is_not_found(&self) -> bool {
        matches!(self.errno, Some(Errno::ENODEV | Errno::ENOENT | Errno::ESRCH | Errno::EADDRNOTAVAIL))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.what.is_empty() {
            true => f.write_str(&self.detail),
            false => write!(f, "{}: {}", self.what, self.detail),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        match e.raw_os_error() {
            Some(n) => Error::errno(Errno::from_raw(n), None),
            None => Error::new("", e.to_string()),
        }
    }
}

impl From<Errno> for Error {
    fn from(e: Errno) -> Error {
        Error::errno(e, None)
    }
}

/// `.context(..)` on any result whose error converts into ours.
pub trait Context<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| e.into().context(what()))
    }
}

/// A kernel failure in a CNI plugin is CNI error 999 with the whole story, so plugins
/// can use `?` on this crate's calls. It lives here because the orphan rule allows it
/// only in the crate of one of the two types, and `underlay` does not depend on this crate.
impl From<Error> for underlay::cni::CniError {
    fn from(e: Error) -> underlay::cni::CniError {
        underlay::cni::CniError::kernel(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_stacks_and_errno_survives() {
        let e = Error::errno(Errno::EEXIST, Some("link exists".into())).context("rename").context("add eth0");
        assert_eq!(e.to_string(), "add eth0: rename: File exists (kernel: link exists)");
        assert!(e.is(Errno::EEXIST));
        assert!(Error::from(Errno::ENODEV).is_not_found());
    }
}
