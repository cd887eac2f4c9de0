//! Docker Engine's remote network and IPAM driver for underlay: dockerd talks to
//! `underlay-docker-plugin` over a unix socket in `/run/docker/plugins/`; networks
//! are macvlans on a parent, endpoints persisted under `/var/lib/underlay/docker`.

pub mod announce;
pub mod api;
pub mod driver;
pub mod etcd_pool;
pub mod host_access;
pub mod host_addresses;
pub mod ipam;
pub mod link;
pub mod options;
pub mod parent;
pub mod probe;
pub mod records;
pub mod server;
