//! IP address management: host-local's ranges and round-robin allocation over a store
//! that is byte-compatible with the reference plugin's.

pub mod allocator;
pub mod boot;
pub mod conf;
pub mod delegate;
pub mod disk;
pub mod hold;
pub mod host_local;
pub mod owner_index;
pub mod range;
pub mod resolv;
mod stamp;
pub mod store;

pub use conf::HostLocalConf;
pub use range::{Range, RangeConf, RangeSet, from_u128, to_u128, without};
