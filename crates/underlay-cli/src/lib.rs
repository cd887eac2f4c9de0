//! The `underlay` command as a library: the command line (`command`), the state it keeps
//! (`state`, `model`), and the CNI calls it makes (`endpoint`). The lab
//! (`crates/underlay-lab`) builds on this API.

pub mod address_store;
pub mod cni_conf;
pub mod command;
pub mod docker_plugin;
pub mod doctor;
pub mod doctor_passed;
pub mod endpoint;
pub mod exited;
pub mod failure;
pub mod finding;
pub mod gc;
pub mod help;
pub mod holds;
pub mod host_access;
pub mod ip_request;
pub mod ipam;
pub mod lab;
pub mod model;
pub mod network;
pub mod network_aux;
pub mod network_create;
pub mod network_parent;
pub mod output;
pub mod parent_addresses;
pub mod resolve;
pub mod run;
pub mod show;
pub mod state;
pub mod stop;
pub mod terminal;
