//! The plugin runner: `(environment, stdin) -> (stdout, exit code)`. A plugin is a set
//! of functions; only `main` touches the process environment and stdout.

use std::io::{Read, Write};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::conf::{NetConf, typed};
use super::env::{Command, Env};
use super::error::CniError;
use super::names;
use super::result::CniResult;
use super::version::Version;

/// One invocation: the parsed environment and config.
#[derive(Debug)]
pub struct Call<'a> {
    pub env: Env,
    pub conf: NetConf,
    pub version: Version,
    /// The config as JSON, for plugin-specific typed parsing.
    pub raw: Value,
    /// The config exactly as received, for delegates.
    pub stdin: &'a [u8],
}

impl Call<'_> {
    /// The whole config as the plugin's own type; code 7 naming the bad key.
    pub fn conf_as<T: DeserializeOwned>(&self) -> Result<T, CniError> {
        typed(self.raw.clone(), "")
    }

    /// `prevResult`, upgraded to the model whatever version it came in.
    pub fn prev_result(&self) -> Result<Option<CniResult>, CniError> {
        match &self.conf.prev_result {
            None | Some(Value::Null) => Ok(None),
            Some(v) => CniResult::from_json(v, self.version).map(|(r, _)| Some(r)),
        }
    }
}

/// What a CNI plugin implements. Every verb is required: silently succeeding at GC or
/// STATUS (what the reference skeleton does for plugins that leave them out) hides leaks.
pub trait Plugin {
    fn versions(&self) -> &'static [Version] {
        Version::ALL
    }
    fn add(&self, call: &Call) -> Result<CniResult, CniError>;
    fn del(&self, call: &Call) -> Result<(), CniError>;
    fn check(&self, call: &Call) -> Result<(), CniError>;
    fn status(&self, call: &Call) -> Result<(), CniError>;
    fn gc(&self, call: &Call) -> Result<(), CniError>;
}

/// What the process prints and how it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub stdout: Vec<u8>,
    pub exit_code: i32,
}

impl Reply {
    fn json(value: &Value, exit_code: i32) -> Reply {
        let mut stdout = serde_json::to_vec(value).expect("JSON values serialize");
        stdout.push(b'\n');
        Reply { stdout, exit_code }
    }

    fn error(err: &CniError, version: &str) -> Reply {
        Reply::json(&err.to_json(version), 1)
    }

    /// The stdout as JSON (tests).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or(Value::Null)
    }
}

/// Runs one invocation. Never panics on bad input; every failure is a CNI error reply.
pub fn run<P: Plugin + ?Sized, K: Into<String>, V: Into<String>>(
    plugin: &P,
    vars: impl IntoIterator<Item = (K, V)>,
    stdin: &[u8],
) -> Reply {
    // Errors are printed in the config's version when it can be read at all.
    let stated = serde_json::from_slice::<Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion").and_then(Value::as_str).map(str::to_string))
        .and_then(|s| Version::parse(&s).ok())
        .unwrap_or(Version::LATEST);
    let env = match Env::from_vars(vars) {
        Ok(env) => env,
        Err(e) => return Reply::error(&e, stated.as_str()),
    };
    if env.command == Command::Version {
        return version_reply(plugin, stated);
    }
    match dispatch(plugin, env, stdin) {
        Ok(Some(out)) => Reply::json(&out, 0),
        Ok(None) => Reply { stdout: Vec::new(), exit_code: 0 },
        Err(e) => Reply::error(&e, stated.as_str()),
    }
}

fn version_reply<P: Plugin + ?Sized>(plugin: &P, stated: Version) -> Reply {
    let versions = plugin.versions();
    let current =
        if versions.contains(&stated) { stated } else { *versions.last().expect("a plugin speaks a version") };
    Reply::json(&serde_json::json!({"cniVersion": current, "supportedVersions": versions}), 0)
}

fn dispatch<P: Plugin + ?Sized>(plugin: &P, env: Env, stdin: &[u8]) -> Result<Option<Value>, CniError> {
    let raw: Value = serde_json::from_slice(stdin)
        .map_err(|e| CniError::decode(format!("decode network config from stdin: {e}")))?;
    if !raw.is_object() {
        return Err(CniError::decode("network config on stdin is not a JSON object"));
    }
    let conf: NetConf = typed(raw.clone(), "")?;
    let version = Version::parse(&conf.cni_version)?;
    if !plugin.versions().contains(&version) {
        return Err(CniError::incompatible(format!(
            "config cniVersion {version} is not supported; this plugin supports {}",
            Version::list(plugin.versions())
        )));
    }
    let command = env.command;
    let needs = match command {
        Command::Check => Some(Version::V0_4_0),
        Command::Status | Command::Gc => Some(Version::V1_1_0),
        _ => None,
    };
    if let Some(min) = needs.filter(|min| version < *min) {
        return Err(CniError::incompatible(format!(
            "config cniVersion {version} does not allow {}; it needs {min} or later",
            command.as_str()
        )));
    }
    names::network_name(&conf.name)?;
    let call = Call { env, conf, version, raw, stdin };
    match command {
        Command::Add => plugin.add(&call).map(|r| Some(r.to_json(version))),
        Command::Del => plugin.del(&call).map(|()| None),
        Command::Check => plugin.check(&call).map(|()| None),
        Command::Status => plugin.status(&call).map(|()| None),
        Command::Gc => plugin.gc(&call).map(|()| None),
        Command::Version => unreachable!("answered before the config is read"),
    }
}

/// The workspace's version (workspace.package.version), the same in every binary.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Whether a person, not a runtime, started the plugin: no `CNI_COMMAND` (as the
/// reference's skeleton decides) or `--version` as the first argument.
pub fn by_hand(command: Option<&str>, first_arg: Option<&str>) -> bool {
    command.is_none_or(str::is_empty) || first_arg == Some("--version")
}

/// What a plugin started by hand prints on stderr, in the reference's two lines.
pub fn about<P: Plugin + ?Sized>(plugin: &P, name: &str) -> String {
    let versions: Vec<&str> = plugin.versions().iter().map(|v| v.as_str()).collect();
    format!("CNI {name} plugin v{VERSION} (underlay)\nCNI protocol versions supported: {}\n", versions.join(", "))
}

/// The whole `main` of a plugin binary.
pub fn main<P: Plugin + ?Sized>(plugin: &P) -> ! {
    let command = std::env::var("CNI_COMMAND").ok();
    let mut args = std::env::args_os();
    // The binary's own name, as the runtime calls it (`type`).
    let name = args.next().and_then(|a| std::path::Path::new(&a).file_name().map(|n| n.to_string_lossy().into_owned()));
    let first = args.next().map(|a| a.to_string_lossy().into_owned());
    if by_hand(command.as_deref(), first.as_deref()) {
        let _ = std::io::stderr().write_all(about(plugin, name.as_deref().unwrap_or("underlay")).as_bytes());
        std::process::exit(0)
    }
    let mut stdin = Vec::new();
    let reply = match std::io::stdin().read_to_end(&mut stdin) {
        Ok(_) => run(plugin, std::env::vars_os().map(|(k, v)| lossy(k, v)), &stdin),
        Err(e) => Reply::error(&CniError::io(format!("read stdin: {e}")), Version::LATEST.as_str()),
    };
    let mut out = std::io::stdout().lock();
    // If stdout is gone there is no one left to tell.
    let _ = out.write_all(&reply.stdout).and_then(|()| out.flush());
    std::process::exit(reply.exit_code)
}

fn lossy(k: std::ffi::OsString, v: std::ffi::OsString) -> (String, String) {
    (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned())
}

#[cfg(test)]
#[path = "plugin_tests.rs"]
mod tests;
