//! The `CNI_*` environment, parsed once and validated per command.

use std::path::PathBuf;

use super::args::CniArgs;
use super::error::CniError;
use super::names;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

impl Command {
    pub fn parse(s: &str) -> Result<Command, CniError> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            "VERSION" => Command::Version,
            "" => return Err(CniError::env("CNI_COMMAND is not set")),
            other => {
                return Err(CniError::env(format!(
                    "CNI_COMMAND \"{other}\" is unknown; expected ADD, DEL, CHECK, STATUS, GC or VERSION"
                )));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Status => "STATUS",
            Command::Gc => "GC",
            Command::Version => "VERSION",
        }
    }

    /// Which attachment variables the spec requires for this command.
    fn needs_attachment(self) -> bool {
        matches!(self, Command::Add | Command::Del | Command::Check)
    }

    fn needs_netns(self) -> bool {
        matches!(self, Command::Add | Command::Check)
    }
}

/// A parsed, validated plugin environment. It also keeps every variable it was given,
/// because a delegated plugin must see the same environment.
#[derive(Debug, Clone)]
pub struct Env {
    pub command: Command,
    pub container_id: String,
    /// Empty on DEL when the runtime no longer has the namespace.
    pub netns: Option<PathBuf>,
    pub ifname: String,
    pub args: CniArgs,
    pub path: Vec<PathBuf>,
    vars: Vec<(String, String)>,
}

impl Env {
    pub fn from_vars<I, K, V>(vars: I) -> Result<Env, CniError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: Vec<(String, String)> = vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        let get = |key: &str| vars.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("");
        let command = Command::parse(get("CNI_COMMAND"))?;
        let container_id = get("CNI_CONTAINERID").to_string();
        let ifname = get("CNI_IFNAME").to_string();
        let netns = Some(get("CNI_NETNS")).filter(|s| !s.is_empty()).map(PathBuf::from);
        if command.needs_attachment() {
            names::container_id(&container_id)?;
            names::ifname(&ifname)?;
        }
        if command.needs_netns() && netns.is_none() {
            return Err(CniError::env(format!("CNI_NETNS is required for {}", command.as_str())));
        }
        if command == Command::Gc && get("CNI_PATH").is_empty() {
            return Err(CniError::env("CNI_PATH is required for GC"));
        }
        let args = CniArgs::parse(get("CNI_ARGS"))?;
        let path = get("CNI_PATH").split(':').filter(|p| !p.is_empty()).map(PathBuf::from).collect();
        Ok(Env { command, container_id, netns, ifname, args, path, vars })
    }

    /// The variables to hand to a delegated plugin, with `CNI_COMMAND` set to `command`.
    pub fn vars_for(&self, command: Command) -> impl Iterator<Item = (&str, &str)> {
        self.vars
            .iter()
            .filter(|(k, _)| k != "CNI_COMMAND")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(std::iter::once(("CNI_COMMAND", command.as_str())))
    }

    /// A copy of this environment for another command (e.g. the DEL that undoes an ADD).
    pub fn with_command(&self, command: Command) -> Env {
        Env { command, ..self.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<Env, CniError> {
        Env::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    const ADD: &[(&str, &str)] = &[
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", "/run/netns/x"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
    ];

    fn with(over: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = ADD.iter().copied().filter(|(k, _)| !over.iter().any(|(o, _)| o == k)).collect();
        v.extend(over.iter().copied().filter(|(_, val)| !val.is_empty()));
        v
    }

    #[test]
    fn add_env_parses() {
        let e = env(ADD).unwrap();
        assert_eq!(e.command, Command::Add);
        assert_eq!(e.path.len(), 2);
        assert_eq!(e.netns.as_deref(), Some(std::path::Path::new("/run/netns/x")));
        let fwd: Vec<_> = e.vars_for(Command::Del).collect();
        assert!(fwd.contains(&("CNI_COMMAND", "DEL")));
        assert!(!fwd.contains(&("CNI_COMMAND", "ADD")));
    }

    #[test]
    fn each_bad_variable_is_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("CNI_COMMAND", "")], "CNI_COMMAND"),
            (&[("CNI_COMMAND", "FOO")], "FOO"),
            (&[("CNI_CONTAINERID", "")], "CNI_CONTAINERID"),
            (&[("CNI_CONTAINERID", "../x")], "../x"),
            (&[("CNI_NETNS", "")], "CNI_NETNS"),
            (&[("CNI_IFNAME", "")], "CNI_IFNAME"),
            (&[("CNI_IFNAME", "eth0:1")], "eth0:1"),
            (&[("CNI_IFNAME", "eth%d")], "eth%d"),
            (&[("CNI_IFNAME", "averyveryverylongname")], "averyveryverylongname"),
            (&[("CNI_ARGS", "IP")], "IP"),
        ];
        for (over, named) in cases {
            let err = env(&with(over)).unwrap_err();
            assert_eq!(err.code, 4, "{over:?}: {err}");
            assert!(err.msg.contains(named), "{over:?}: {}", err.msg);
        }
    }

    #[test]
    fn del_tolerates_missing_netns_and_status_needs_little() {
        let e = env(&with(&[("CNI_COMMAND", "DEL"), ("CNI_NETNS", "")])).unwrap();
        assert!(e.netns.is_none());
        env(&[("CNI_COMMAND", "STATUS")]).unwrap();
        env(&[("CNI_COMMAND", "VERSION")]).unwrap();
        assert_eq!(env(&[("CNI_COMMAND", "GC")]).unwrap_err().code, 4);
        env(&[("CNI_COMMAND", "GC"), ("CNI_PATH", "/x")]).unwrap();
    }
}
