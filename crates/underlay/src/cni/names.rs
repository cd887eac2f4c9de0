//! Validation of the names that end up as directory and interface names.

use super::error::CniError;

/// The spec's pattern for container IDs and network names: an ASCII letter or digit
/// first, then letters, digits, `_`, `.` and `-`. Nothing that can climb a directory.
fn is_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `CNI_CONTAINERID`: code 4 when it does not match the spec's pattern.
pub fn container_id(id: &str) -> Result<(), CniError> {
    if id.is_empty() {
        return Err(CniError::env("CNI_CONTAINERID is empty"));
    }
    if !is_id(id) {
        return Err(CniError::env(format!(
            "CNI_CONTAINERID \"{id}\" is invalid: it must start with a letter or digit and contain only letters, digits, '_', '.' and '-'"
        )));
    }
    Ok(())
}

/// The network `name`: code 7, since it comes from the config. It names a directory
/// under the IPAM store, so `../x` must never pass.
pub fn network_name(name: &str) -> Result<(), CniError> {
    if name.is_empty() {
        return Err(CniError::config("network config has no \"name\""));
    }
    if !is_id(name) {
        return Err(CniError::config(format!(
            "network name \"{name}\" is invalid: it must start with a letter or digit and contain only letters, digits, '_', '.' and '-'"
        )));
    }
    Ok(())
}

/// Linux interface names: 1–15 bytes, no `/`, `:` or whitespace, not `.` or `..`.
pub fn ifname_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > 15 {
        Some("is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("is not a valid name")
    } else if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        Some("contains '/', ':' or whitespace")
    } else if name.contains('%') {
        // The kernel takes a name with '%' as a template (`eth%d`) and picks the
        // number itself: the link would not be called what the runtime asked for.
        Some("contains '%' (a kernel name template, which the kernel would expand)")
    } else {
        None
    }
}

/// `CNI_IFNAME`: code 4.
pub fn ifname(name: &str) -> Result<(), CniError> {
    match ifname_problem(name) {
        Some(why) => Err(CniError::env(format!("CNI_IFNAME \"{name}\" {why}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids() {
        for ok in ["a", "0abc", "pod_1.2-3", "dc3e2f1b"] {
            container_id(ok).unwrap();
        }
        for bad in ["", "-a", "_a", ".a", "a/b", "../x", "a b", "ä"] {
            let e = container_id(bad).unwrap_err();
            assert_eq!(e.code, 4, "{bad}");
            assert!(e.msg.contains("CNI_CONTAINERID"), "{}", e.msg);
            assert!(e.msg.contains(bad), "{}", e.msg);
        }
    }

    #[test]
    fn network_names() {
        network_name("macvlan-conf").unwrap();
        for bad in ["../x", "..", ".hidden", "a/b", "a b", ""] {
            let e = network_name(bad).unwrap_err();
            assert_eq!(e.code, 7, "{bad}");
            assert!(e.msg.contains(&format!("\"{bad}\"")) || bad.is_empty(), "{}", e.msg);
        }
    }

    #[test]
    fn ifnames() {
        for ok in ["eth0", "net1", "a", "123456789012345", "veth-x_y.z"] {
            ifname(ok).unwrap();
        }
        for bad in ["", ".", "..", "1234567890123456", "a/b", "a:b", "a b", "a\tb"] {
            let e = ifname(bad).unwrap_err();
            assert_eq!(e.code, 4, "{bad:?}");
            assert!(e.msg.contains("CNI_IFNAME"), "{}", e.msg);
        }
    }
}
