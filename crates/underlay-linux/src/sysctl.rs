//! Sysctls of the calling thread's network namespace (`/proc/sys/net/...` resolves
//! per namespace of the thread that opens it). `Netns::sysctl` wraps these.

use std::path::{Path, PathBuf};

use crate::error::{Context, Error, Result};

/// Keys use `/` separators because interface names may contain dots (`enp0s3.10`).
pub fn path(key: &str) -> Result<PathBuf> {
    if key.split('/').any(|p| p.is_empty() || p == "..") {
        return Err(Error::new(format!("sysctl {key}"), "invalid key"));
    }
    Ok(Path::new("/proc/sys").join(key))
}

pub fn read(key: &str) -> Result<String> {
    std::fs::read_to_string(path(key)?).map(|s| s.trim_end().to_string()).with_context(|| format!("read sysctl {key}"))
}

pub fn write(key: &str, value: &str) -> Result<()> {
    std::fs::write(path(key)?, value).with_context(|| format!("set sysctl {key}={value}"))
}

/// Writes only when the value differs (a write is what needs privileges).
pub fn ensure(key: &str, value: &str) -> Result<()> {
    if read(key)? != value { write(key, value) } else { Ok(()) }
}
