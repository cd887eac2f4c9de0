//! What an operator does with the store outside CNI calls: list reservations, and
//! release everything a node held once it is gone for good (its pods cannot come back,
//! and nothing else would ever free their addresses).

use std::net::IpAddr;

use etcd_client::{DeleteOptions, Txn, TxnOp};
use underlay::cni::CniError;

use crate::conf::EtcdConf;
use crate::etcd::Etcd;
use crate::store::{Keys, Record};

pub struct Admin {
    etcd: Etcd,
    prefix: String,
}

/// One address record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reservation {
    pub network: String,
    pub ip: IpAddr,
    /// None when the record cannot be read.
    pub holder: Option<Record>,
}

impl Admin {
    pub fn connect(conf: &EtcdConf) -> Result<Admin, CniError> {
        conf.validate()?;
        Ok(Admin { etcd: Etcd::connect(conf)?, prefix: conf.prefix().to_string() })
    }

    /// Networks with anything in the store.
    pub fn networks(&mut self) -> Result<Vec<String>, CniError> {
        let base = format!("{}/", self.prefix);
        let mut nets: Vec<String> = self
            .etcd
            .list(&base, true)?
            .iter()
            .filter_map(|kv| kv.key.strip_prefix(&base)?.split('/').next().map(str::to_string))
            .collect();
        nets.dedup();
        Ok(nets)
    }

    /// `network`, or every network in the store.
    fn chosen(&mut self, network: Option<&str>) -> Result<Vec<String>, CniError> {
        match network {
            Some(n) => Ok(vec![n.to_string()]),
            None => self.networks(),
        }
    }

    pub fn list(&mut self, network: Option<&str>) -> Result<Vec<Reservation>, CniError> {
        let nets = self.chosen(network)?;
        let mut out = Vec::new();
        for net in nets {
            let keys = Keys::new(&self.prefix, &net);
            for prefix in keys.ips() {
                for kv in self.etcd.list(&prefix, false)? {
                    if let Some(ip) = keys.parse_ip(&kv.key) {
                        out.push(Reservation {
                            network: net.clone(),
                            ip,
                            holder: serde_json::from_slice(&kv.value).ok(),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Frees every address `node` holds (in `network`, or in all), and its round-robin
    /// positions. Returns what was freed.
    pub fn release_node(&mut self, node: &str, network: Option<&str>) -> Result<Vec<Reservation>, CniError> {
        let nets = self.chosen(network)?;
        let mut freed = Vec::new();
        for net in nets {
            let keys = Keys::new(&self.prefix, &net);
            for kv in self.etcd.list(&keys.node(node), true)? {
                let Some((owner, ip)) = keys.parse_owner(node, &kv.key) else { continue };
                let ip_key = keys.ip(ip);
                let mut ops = vec![TxnOp::delete(kv.key.clone(), None)];
                let mut when = vec![];
                let record = match self.etcd.get(&ip_key)? {
                    Some(r) => serde_json::from_slice::<Record>(&r.value).ok().map(|rec| (rec, r.mod_revision)),
                    None => None,
                };
                let holder = match record {
                    // The address record is this node's: both go, if unchanged since read.
                    Some((rec, rev)) if rec.node == node && rec.owner() == owner => {
                        when.push(etcd_client::Compare::mod_revision(
                            ip_key.clone(),
                            etcd_client::CompareOp::Equal,
                            rev,
                        ));
                        ops.push(TxnOp::delete(ip_key, None));
                        Some(rec)
                    }
                    _ => None,
                };
                if self.etcd.txn(&format!("release {ip} of node {node}"), Txn::new().when(when).and_then(ops))?
                    && holder.is_some()
                {
                    freed.push(Reservation { network: net.clone(), ip, holder });
                }
            }
            let lasts =
                Txn::new().and_then([TxnOp::delete(keys.lasts(node), Some(DeleteOptions::new().with_prefix()))]);
            self.etcd.txn(&format!("forget node {node}'s positions"), lasts)?;
        }
        Ok(freed)
    }
}
