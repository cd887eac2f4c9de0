//! Which boot this is, so reservations made before a reboot can be told apart.

use std::fs;

use crate::cni::CniError;

/// The running boot: its random ID and when it started (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    pub id: String,
    /// Read only when needed (after a reboot): `None` until then.
    btime: Option<i64>,
}

fn read(p: &str) -> Result<String, CniError> {
    fs::read_to_string(p).map_err(|e| CniError::io(format!("read {p}: {e}")))
}

impl Boot {
    /// A boot with a known start time (tests, tools).
    pub fn new(id: &str, btime: i64) -> Boot {
        Boot { id: id.to_string(), btime: Some(btime) }
    }

    pub fn current() -> Result<Boot, CniError> {
        Ok(Boot { id: read("/proc/sys/kernel/random/boot_id")?.trim().to_string(), btime: None })
    }

    /// When this boot started: now minus the uptime. (/proc/stat has it too, but costs
    /// far more to read.)
    pub fn btime(&self) -> Result<i64, CniError> {
        if let Some(t) = self.btime {
            return Ok(t);
        }
        let uptime: f64 = read("/proc/uptime")?
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| CniError::io("unreadable /proc/uptime"))?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Ok((now.as_secs_f64() - uptime).floor() as i64)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_boot() {
        let b = super::Boot::current().unwrap();
        assert_eq!(b.id.len(), 36, "{b:?}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let btime = b.btime().unwrap();
        assert!(btime > 0 && btime <= now);
    }
}
