//! Which plugin binary is this? Our plugins carry an identity string in an ELF section
//! of their own, so `macvlan` can tell whether the `host-local` it found on `CNI_PATH`
//! is ours of the same version (and can run it in-process, with the same result) or
//! another implementation (which it must exec). Reading it costs a few small reads,
//! far less than starting a process.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The section our plugin binaries put their identity in.
pub const SECTION: &str = ".underlay.identity";

/// The identity of this version's host-local: same text, same code, same result.
pub const HOST_LOCAL: [u8; 48] = pad(concat!("underlay host-local ", env!("CARGO_PKG_VERSION"), " store-v1"));

/// A fixed-size, NUL-padded copy of `s` (statics in a link section need a fixed size).
pub const fn pad(s: &str) -> [u8; 48] {
    let b = s.as_bytes();
    assert!(b.len() < 48, "identity too long");
    let mut out = [0u8; 48];
    let mut i = 0;
    while i < b.len() {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// The bytes of section `name` in the 64-bit little-endian ELF file at `path`.
pub fn read_section(path: &Path, name: &str) -> Option<Vec<u8>> {
    let f = File::open(path).ok()?;
    let mut header = [0u8; 64];
    f.read_exact_at(&mut header, 0).ok()?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes")) as usize;
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(&header, 0x28), u16_at(&header, 0x3a), u16_at(&header, 0x3c), u16_at(&header, 0x3e));
    if shentsize != 64 || shnum == 0 || shnum > 4096 || shstrndx >= shnum {
        return None;
    }
    let mut table = vec![0u8; shnum * 64];
    f.read_exact_at(&mut table, shoff).ok()?;
    let section = |i: usize| &table[i * 64..(i + 1) * 64];
    let read = |s: &[u8]| -> Option<Vec<u8>> {
        let size = u64_at(s, 0x20) as usize;
        if size > 1 << 20 {
            return None;
        }
        let mut buf = vec![0u8; size];
        f.read_exact_at(&mut buf, u64_at(s, 0x18)).ok()?;
        Some(buf)
    };
    let names = read(section(shstrndx))?;
    (0..shnum).map(section).find_map(|s| {
        let start = u32_at(s, 0);
        let end = start + names.get(start..)?.iter().position(|b| *b == 0)?;
        (&names[start..end] == name.as_bytes()).then(|| read(s)).flatten()
    })
}

/// Whether the binary at `path` is this version's host-local.
pub fn is_our_host_local(path: &Path) -> bool {
    read_section(path, SECTION).is_some_and(|b| b == HOST_LOCAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_files_have_no_identity() {
        assert!(!is_our_host_local(Path::new("/bin/sh")));
        assert!(!is_our_host_local(Path::new("/etc/hostname")));
        assert!(!is_our_host_local(Path::new("/nonexistent")));
        assert!(read_section(Path::new("/bin/sh"), ".text").is_some(), "reads real sections");
    }
}
