//! Records written so a crash leaves the old one or the new one, never half: the JSON
//! goes to a fresh temporary file beside the record (created exclusively, mode 0600,
//! so no symlink planted there is followed), is synced, renamed over the record, and
//! the directory is synced so the rename itself survives a power cut.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

/// Writes `value` as pretty JSON to `path`, atomically and durably (see the module).
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    write_bytes(path, &bytes)
}

/// Writes `bytes` to `path`, atomically and durably (see the module).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if path.file_name().is_none() {
        return Err(io::Error::other(format!("{} names no file", path.display())));
    }
    // `.tmpXXXXXX`: short (a record named near NAME_MAX still gets one) and not ending
    // in .json, so listings of records skip it.
    let mut tmp = tempfile::Builder::new().tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_the_record_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.json");
        std::fs::write(&path, b"old").unwrap();
        write_json(&path, &serde_json::json!({"a": 1})).unwrap();
        let back: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back["a"], 1);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("net.json")]);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_missing_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_bytes(&dir.path().join("no/such/dir/x.json"), b"{}").is_err());
    }
}
