//! The configs of docs/kubernetes.md, read out of the guide itself so tests run exactly
//! what users copy: the NetworkAttachmentDefinitions' `spec.config`, the pods' network
//! annotations, the Podman conflist. Only the shapes the guide uses are understood (a
//! YAML block scalar `key: |` holding JSON); anything else fails the test loudly.

use std::path::PathBuf;

use serde_json::Value;

pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/kubernetes.md")
}

pub fn text() -> String {
    std::fs::read_to_string(path()).unwrap_or_else(|e| panic!("read {}: {e}", path().display()))
}

/// The fenced code blocks of language `lang`, in order, each with the heading it sits under.
pub fn blocks(text: &str, lang: &str) -> Vec<(String, String)> {
    let (mut out, mut heading, mut open): (Vec<(String, String)>, String, Option<String>) =
        (Vec::new(), String::new(), None);
    let mut body = String::new();
    for line in text.lines() {
        match &open {
            Some(l) if line.trim_start() == "```" => {
                if l == lang {
                    out.push((heading.clone(), std::mem::take(&mut body)));
                }
                body.clear();
                open = None;
            }
            Some(_) => {
                body.push_str(line);
                body.push('\n');
            }
            None if line.starts_with("```") => open = Some(line[3..].trim().to_string()),
            None if line.starts_with('#') => heading = line.trim_start_matches('#').trim().to_string(),
            None => {}
        }
    }
    assert!(open.is_none(), "{}: a code block is never closed", path().display());
    out
}

/// The block scalar under `key: |` in a YAML text, de-indented.
pub fn block_scalar(yaml: &str, key: &str) -> Option<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let at = lines.iter().position(|l| l.trim() == format!("{key}: |"))?;
    let indent = |l: &str| l.len() - l.trim_start().len();
    let outer = indent(lines[at]);
    let body: Vec<&str> =
        lines[at + 1..].iter().take_while(|l| l.trim().is_empty() || indent(l) > outer).copied().collect();
    let inner = body.iter().filter(|l| !l.trim().is_empty()).map(|l| indent(l)).min()?;
    Some(body.iter().map(|l| l.get(inner..).unwrap_or("")).collect::<Vec<_>>().join("\n"))
}

fn metadata_name(yaml: &str) -> String {
    let lines: Vec<&str> = yaml.lines().collect();
    let at = lines.iter().position(|l| l.trim() == "metadata:").expect("a metadata section");
    lines[at + 1..].iter().find_map(|l| l.trim().strip_prefix("name: ")).expect("metadata.name").trim().to_string()
}

/// Every NetworkAttachmentDefinition in the guide: its name and its config.
pub fn nads() -> Vec<(String, Value)> {
    blocks(&text(), "yaml")
        .into_iter()
        .filter(|(_, y)| y.lines().any(|l| l.trim() == "kind: NetworkAttachmentDefinition"))
        .map(|(_, y)| {
            let name = metadata_name(&y);
            let config = block_scalar(&y, "config").unwrap_or_else(|| panic!("NAD {name}: no `config: |`"));
            let config: Value =
                serde_json::from_str(&config).unwrap_or_else(|e| panic!("NAD {name}: config is not JSON: {e}"));
            (name, config)
        })
        .collect()
}

pub fn nad(name: &str) -> Value {
    let all = nads();
    let names: Vec<&String> = all.iter().map(|(n, _)| n).collect();
    let found = all.iter().find(|(n, _)| n == name);
    found.unwrap_or_else(|| panic!("the guide has no NAD {name} (it has {names:?})")).1.clone()
}

/// The entry for network `name` in some pod's `k8s.v1.cni.cncf.io/networks` annotation.
pub fn pod_request(name: &str) -> Value {
    for (_, y) in blocks(&text(), "yaml").into_iter().filter(|(_, y)| y.contains("kind: Pod")) {
        let Some(list) = block_scalar(&y, "k8s.v1.cni.cncf.io/networks") else { continue };
        let list: Value = serde_json::from_str(&list).unwrap_or_else(|e| panic!("annotation is not JSON: {e}"));
        if let Some(entry) = list.as_array().into_iter().flatten().find(|e| e["name"] == name) {
            return entry.clone();
        }
    }
    panic!("no pod in the guide asks for {name} with a JSON annotation")
}

/// What Multus hands the plugins for a pod's request: the annotation's `ips` and `mac`
/// become `runtimeConfig` of each plugin that declares that capability (libcni's rule).
pub fn with_runtime_config(conf: &Value, request: &Value) -> Value {
    let mut conf = conf.clone();
    let inject = |plugin: &mut Value| {
        for cap in ["ips", "mac"] {
            if plugin["capabilities"][cap] == true && !request[cap].is_null() {
                plugin["runtimeConfig"][cap] = request[cap].clone();
            }
        }
    };
    match conf.get_mut("plugins").and_then(Value::as_array_mut) {
        Some(plugins) => plugins.iter_mut().for_each(inject),
        None => inject(&mut conf),
    }
    conf
}

/// The guide's Podman conflist (the JSON block of its Podman section).
pub fn podman_conflist() -> Value {
    let found = blocks(&text(), "json").into_iter().find(|(h, _)| h.starts_with("Podman"));
    let (_, json) = found.expect("the guide's Podman section has a JSON conflist");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("the Podman conflist is not JSON: {e}"))
}
