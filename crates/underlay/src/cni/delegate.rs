//! Delegation: finding a plugin (usually IPAM) on `CNI_PATH` and running it with the
//! caller's environment and the whole config, as the spec requires.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use serde_json::Value;

use super::conf::{ATTACHMENTS_OLD, VALID_ATTACHMENTS};
use super::env::{Command, Env};
use super::error::{CniError, code};
use super::result::CniResult;
use super::version::Version;

/// The first executable file named `plugin` in `path`.
pub fn find(plugin: &str, path: &[PathBuf]) -> Result<PathBuf, CniError> {
    if plugin.is_empty() || plugin.contains('/') {
        return Err(CniError::config(format!("plugin type \"{plugin}\" is not a plugin name")));
    }
    if path.is_empty() {
        return Err(CniError::env(format!("CNI_PATH is empty; cannot find plugin \"{plugin}\"")));
    }
    path.iter().map(|dir| dir.join(plugin)).find(|p| is_executable(p)).ok_or_else(|| {
        let dirs: Vec<String> = path.iter().map(|p| p.display().to_string()).collect();
        CniError::config(format!("plugin \"{plugin}\" not found in CNI_PATH [{}]", dirs.join(", ")))
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Runs `plugin` for `command`. Returns its stdout (the result JSON for ADD).
pub fn exec(plugin: &str, command: Command, env: &Env, stdin: &[u8]) -> Result<Vec<u8>, CniError> {
    let bin = find(plugin, &env.path)?;
    let stdin = if command == Command::Gc { with_both_attachment_keys(stdin)? } else { stdin.to_vec() };
    let mut child =
        spawn(Process::new(&bin).env_clear().envs(env.vars_for(command)).stdin(Stdio::piped()).stdout(Stdio::piped()))
            .map_err(|e| CniError::io(format!("start plugin {}: {e}", bin.display())))?;
    // A plugin that exits without reading stdin closes the pipe; its exit status says
    // what went wrong, so a write error here is not the interesting one.
    let _ = child.stdin.take().expect("stdin is piped").write_all(&stdin);
    let out = child.wait_with_output().map_err(|e| CniError::io(format!("wait for plugin {}: {e}", bin.display())))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    Err(match serde_json::from_slice::<CniError>(&out.stdout) {
        Ok(err) => err,
        Err(_) => CniError::new(
            code::PLUGIN_FAILED,
            format!(
                "plugin {plugin} {} failed ({}) without a CNI error: {}",
                command.as_str(),
                out.status,
                String::from_utf8_lossy(&out.stdout).trim()
            ),
        ),
    })
}

/// Starts `p`, retrying briefly while the binary is "busy": a plugin just written
/// (an upgrade) can still be open for writing in a child another thread forked before
/// its exec closed the descriptor.
fn spawn(p: &mut Process) -> std::io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match p.stderr(Stdio::inherit()).spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(5 * tries));
            }
            r => return r,
        }
    }
}

/// Delegated ADD: the plugin's result, read in whatever version it answered.
pub fn add(plugin: &str, env: &Env, stdin: &[u8], version: Version) -> Result<CniResult, CniError> {
    let out = exec(plugin, Command::Add, env, stdin)?;
    let value: Value =
        serde_json::from_slice(&out).map_err(|e| CniError::decode(format!("decode result of plugin {plugin}: {e}")))?;
    CniResult::from_json(&value, version).map(|(r, _)| r).map_err(|e| e.context(format!("plugin {plugin}")))
}

/// Delegated DEL, CHECK, STATUS or GC: success or the plugin's error.
pub fn run(plugin: &str, command: Command, env: &Env, stdin: &[u8]) -> Result<(), CniError> {
    exec(plugin, command, env, stdin).map(drop)
}

/// Runtimes send either spelling of the GC key; delegates may read either, so both go.
fn with_both_attachment_keys(stdin: &[u8]) -> Result<Vec<u8>, CniError> {
    let mut conf: serde_json::Map<String, Value> =
        serde_json::from_slice(stdin).map_err(|e| CniError::decode(format!("decode config: {e}")))?;
    let list = conf.get(VALID_ATTACHMENTS).or_else(|| conf.get(ATTACHMENTS_OLD)).cloned();
    if let Some(list) = list {
        conf.entry(VALID_ATTACHMENTS).or_insert_with(|| list.clone());
        conf.entry(ATTACHMENTS_OLD).or_insert(list);
    }
    Ok(serde_json::to_vec(&conf).expect("a map always serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn env_for(dir: &Path, command: &str) -> Env {
        Env::from_vars([
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", dir.to_str().unwrap()),
        ])
        .unwrap()
    }

    #[test]
    fn finds_runs_and_forwards_env_and_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("seen");
        // The fake IPAM records what it was given, then answers a 0.4.0 result.
        script(
            dir.path(),
            "fake-ipam",
            &format!(
                "cat > {o}.stdin; echo \"$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME\" > {o}.env\n\
                 echo '{{\"cniVersion\":\"0.4.0\",\"ips\":[{{\"version\":\"4\",\"address\":\"10.1.0.5/24\",\"gateway\":\"10.1.0.1\"}}],\"dns\":{{}}}}'",
                o = out.display()
            ),
        );
        let env = env_for(dir.path(), "ADD");
        let stdin = br#"{"cniVersion":"0.4.0","name":"n","type":"macvlan","ipam":{"type":"fake-ipam"}}"#;
        let r = add("fake-ipam", &env, stdin, Version::V0_4_0).unwrap();
        assert_eq!(r.ips[0].address.to_string(), "10.1.0.5/24");
        assert_eq!(std::fs::read(out.with_extension("stdin")).unwrap(), stdin);
        assert_eq!(std::fs::read_to_string(out.with_extension("env")).unwrap(), "ADD c1 eth0\n");
        run("fake-ipam", Command::Del, &env, stdin).unwrap();
        assert_eq!(std::fs::read_to_string(out.with_extension("env")).unwrap(), "DEL c1 eth0\n");
    }

    #[test]
    fn passes_the_plugins_error_through_and_names_missing_plugins() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "failing", r#"echo '{"cniVersion":"1.0.0","code":11,"msg":"busy"}'; exit 1"#);
        script(dir.path(), "garbage", "echo oops; exit 3");
        let env = env_for(dir.path(), "ADD");
        let e = run("failing", Command::Add, &env, b"{}").unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (11, "busy"));
        let e = run("garbage", Command::Add, &env, b"{}").unwrap_err();
        assert_eq!(e.code, code::PLUGIN_FAILED);
        assert!(e.msg.contains("oops"), "{}", e.msg);
        let e = run("absent", Command::Add, &env, b"{}").unwrap_err();
        assert_eq!(e.code, 7);
        assert!(e.msg.contains("absent") && e.msg.contains(dir.path().to_str().unwrap()), "{}", e.msg);
    }

    #[test]
    fn gc_gets_both_attachment_spellings() {
        let dir = tempfile::tempdir().unwrap();
        let seen = dir.path().join("gc.stdin");
        script(dir.path(), "gc-ipam", &format!("cat > {}", seen.display()));
        let env = env_for(dir.path(), "GC");
        let stdin =
            br#"{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]}"#;
        run("gc-ipam", Command::Gc, &env, stdin).unwrap();
        let got: Value = serde_json::from_slice(&std::fs::read(&seen).unwrap()).unwrap();
        assert_eq!(got[VALID_ATTACHMENTS], got[ATTACHMENTS_OLD]);
        assert_eq!(got[ATTACHMENTS_OLD][0]["containerID"], "c1");
    }
}
