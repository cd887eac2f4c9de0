//! Reading a file a config names (`resolvConf`, `passwordFile`, CA/cert/key files):
//! only a regular file, at most a size cap, and never blocking. A FIFO, a device such as
//! `/dev/zero`, a directory or an oversized file is code 7 naming the config key, so a
//! hostile path can neither hang a plugin (and every ADD queued behind its lock) nor
//! grow its memory without bound. Callers read before taking any lock.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::cni::CniError;

/// Enough for any resolv.conf, password or PEM bundle a node would have.
pub const CONFIG_FILE_CAP: u64 = 1 << 20;

/// The bytes of the regular file at `path`, named `key` in errors.
pub fn read_config_file(path: &Path, key: &str, cap: u64) -> Result<Vec<u8>, CniError> {
    let bad = |why: String| CniError::config(format!("{key} \"{}\": {why}", path.display()));
    // O_NONBLOCK: opening a FIFO with no writer must not wait for one.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| bad(e.to_string()))?;
    let meta = file.metadata().map_err(|e| bad(e.to_string()))?;
    if !meta.file_type().is_file() {
        return Err(bad(format!("is not a regular file ({})", kind(&meta.file_type()))));
    }
    if meta.len() > cap {
        return Err(bad(format!("is {} bytes; at most {cap} are read", meta.len())));
    }
    let mut out = Vec::new();
    // The cap holds even if the file grows while it is read.
    file.take(cap + 1).read_to_end(&mut out).map_err(|e| bad(e.to_string()))?;
    if out.len() as u64 > cap {
        return Err(bad(format!("grew past {cap} bytes while being read")));
    }
    Ok(out)
}

/// [`read_config_file`] as UTF-8 text.
pub fn read_config_text(path: &Path, key: &str, cap: u64) -> Result<String, CniError> {
    String::from_utf8(read_config_file(path, key, cap)?)
        .map_err(|_| CniError::config(format!("{key} \"{}\": is not UTF-8 text", path.display())))
}

fn kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn regular_files_are_read_and_everything_else_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("resolv.conf");
        std::fs::write(&ok, "nameserver 10.0.0.1\n").unwrap();
        assert_eq!(read_config_text(&ok, "ipam.resolvConf", CONFIG_FILE_CAP).unwrap(), "nameserver 10.0.0.1\n");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 100]).unwrap();
        let started = Instant::now();
        for (path, cap, needle) in [
            (fifo.as_path(), CONFIG_FILE_CAP, "FIFO"),
            (Path::new("/dev/zero"), CONFIG_FILE_CAP, "character device"),
            (dir.path(), CONFIG_FILE_CAP, "directory"),
            (big.as_path(), 10, "100 bytes"),
            (Path::new("/nonexistent/x"), CONFIG_FILE_CAP, "No such file"),
        ] {
            let e = read_config_file(path, "ipam.resolvConf", cap).unwrap_err();
            assert_eq!(e.code, 7);
            assert!(e.msg.contains("ipam.resolvConf") && e.msg.contains(needle), "{}", e.msg);
        }
        assert!(started.elapsed() < Duration::from_secs(2), "a FIFO must not block");
    }
}
