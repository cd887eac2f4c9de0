//! `underlay ipam`: the cluster-wide address store (underlay-ipam on etcd) for
//! operators — what is reserved by whom, and releasing all a dead node held.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::Value;
use underlay_ipam::EtcdConf;
use underlay_ipam::admin::Admin;

use crate::failure::{Failure, Result};
use crate::output::{Format, print_json, table};
use crate::state::{Dirs, State};

#[derive(Subcommand)]
pub enum IpamCommand {
    /// List reservations.
    Ls {
        #[command(flatten)]
        store: StoreArgs,
        /// Only this network.
        #[arg(long)]
        network: Option<String>,
        /// Only this node's.
        #[arg(long)]
        node: Option<String>,
        /// A table for people, or JSON for scripts.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Release every address a node held (it is gone for good).
    ReleaseNode {
        /// The node's name in the store (its hostname, unless the network set another).
        node: String,
        #[command(flatten)]
        store: StoreArgs,
        /// Only in this network.
        #[arg(long)]
        network: Option<String>,
    },
}

/// Which store: an `underlay` network's, a CNI config's, or given by flags.
#[derive(Args)]
pub struct StoreArgs {
    /// The store of this command's network NAME (made with --ipam-driver underlay-ipam).
    #[arg(long = "from-network", conflicts_with_all = ["cni_config", "etcd"])]
    from_network: Option<String>,
    /// A CNI network config (.conf or .conflist) whose IPAM is underlay-ipam.
    #[arg(long = "cni-config", conflicts_with = "etcd")]
    cni_config: Option<PathBuf>,
    /// etcd client URLs.
    #[arg(long = "etcd", value_delimiter = ',')]
    etcd: Vec<String>,
    /// The key prefix the store lives under (default: underlay-ipam's).
    #[arg(long = "etcd-prefix")]
    prefix: Option<String>,
    /// CA certificate (PEM) to check etcd's TLS certificate with.
    #[arg(long = "etcd-ca")]
    ca: Option<PathBuf>,
    /// Client certificate (PEM) for etcd's TLS client authentication.
    #[arg(long = "etcd-cert")]
    cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long = "etcd-key")]
    key: Option<PathBuf>,
    /// etcd user name (with --etcd-password-file).
    #[arg(long = "etcd-user")]
    user: Option<String>,
    /// A file holding the etcd user's password.
    #[arg(long = "etcd-password-file")]
    password_file: Option<PathBuf>,
}

impl StoreArgs {
    fn conf(&self, dirs: &Dirs) -> Result<EtcdConf> {
        if let Some(name) = &self.from_network {
            let net = State::lock(dirs)?.network(name)?;
            return net.ipam.map(|c| c.etcd).ok_or_else(|| {
                Failure::usage(format!("network \"{name}\" keeps its addresses with host-local, not in etcd"))
            });
        }
        if let Some(path) = &self.cni_config {
            return from_cni_config(path);
        }
        if self.etcd.is_empty() {
            return Err(Failure::usage("say which store: --etcd URL[,URL], --cni-config FILE or --from-network NAME"));
        }
        Ok(EtcdConf {
            endpoints: self.etcd.clone(),
            prefix: self.prefix.clone(),
            ca_file: self.ca.clone(),
            cert_file: self.cert.clone(),
            key_file: self.key.clone(),
            username: self.user.clone(),
            password: None,
            password_file: self.password_file.clone(),
            timeout_ms: None,
        })
    }
}

/// The `ipam.etcd` section of a CNI config or conflist.
fn from_cni_config(path: &std::path::Path) -> Result<EtcdConf> {
    let text = std::fs::read(path).map_err(|e| Failure::usage(format!("read {}: {e}", path.display())))?;
    let v: Value =
        serde_json::from_slice(&text).map_err(|e| Failure::usage(format!("{} is not JSON: {e}", path.display())))?;
    let plugins = match v.get("plugins").and_then(Value::as_array) {
        Some(list) => list.clone(),
        None => vec![v.clone()],
    };
    let section = plugins
        .iter()
        .find(|p| p.pointer("/ipam/type").and_then(Value::as_str) == Some("underlay-ipam"))
        .and_then(|p| p.pointer("/ipam/etcd"))
        .ok_or_else(|| {
            Failure::usage(format!("{} has no plugin with an underlay-ipam \"ipam.etcd\"", path.display()))
        })?;
    serde_json::from_value(section.clone()).map_err(|e| Failure::usage(format!("{}: ipam.etcd: {e}", path.display())))
}

fn admin(dirs: &Dirs, store: &StoreArgs) -> Result<Admin> {
    Ok(Admin::connect(&store.conf(dirs)?)?)
}

pub fn run(dirs: &Dirs, cmd: IpamCommand) -> Result<()> {
    match cmd {
        IpamCommand::Ls { store, network, node, format } => {
            let mut all = admin(dirs, &store)?.list(network.as_deref())?;
            all.retain(|r| node.as_ref().is_none_or(|n| r.holder.as_ref().is_some_and(|h| &h.node == n)));
            if format == Format::Json {
                print_json(&all);
                return Ok(());
            }
            table(
                &["NETWORK", "ADDRESS", "NODE", "CONTAINER", "IFNAME"],
                all.iter().map(|r| {
                    let (node, id, ifname) = match &r.holder {
                        Some(h) => (h.node.clone(), h.container_id.clone(), h.ifname.clone()),
                        None => ("?".into(), "(unreadable record)".into(), String::new()),
                    };
                    vec![r.network.clone(), r.ip.to_string(), node, id, ifname]
                }),
            );
            Ok(())
        }
        IpamCommand::ReleaseNode { node, store, network } => {
            let freed = admin(dirs, &store)?.release_node(&node, network.as_deref())?;
            for r in &freed {
                println!(
                    "released {} on {} (container {})",
                    r.ip,
                    r.network,
                    r.holder.as_ref().map(|h| h.container_id.as_str()).unwrap_or("?")
                );
            }
            eprintln!("{} addresses released; node {node} holds nothing now", freed.len());
            Ok(())
        }
    }
}
