//! Which boot this is, so reservations made before a reboot can be told apart.

use std::fs;

use crate::cni::CniError;

/// The running boot: its random ID and when it started (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    pub id: String,
    pub btime: i64,
}

impl Boot {
    pub fn current() -> Result<Boot, CniError> {
        let read = |p: &str| fs::read_to_string(p).map_err(|e| CniError::io(format!("read {p}: {e}")));
        let id = read("/proc/sys/kernel/random/boot_id")?.trim().to_string();
        // Boot time = now - uptime. (/proc/stat has it too, but costs far more to read.)
        let uptime: f64 = read("/proc/uptime")?
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| CniError::io("unreadable /proc/uptime"))?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Ok(Boot { id, btime: (now.as_secs_f64() - uptime).floor() as i64 })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_boot() {
        let b = super::Boot::current().unwrap();
        assert_eq!(b.id.len(), 36, "{b:?}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        assert!(b.btime > 0 && b.btime <= now);
    }
}
