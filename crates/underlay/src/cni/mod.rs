//! The CNI protocol: versions, errors, environment, config, results, delegation and the
//! plugin runner. No netlink here; delegation execs the plugins a config names.

pub mod args;
pub mod conf;
pub mod delegate;
pub mod env;
pub mod error;
pub mod golike;
pub mod names;
pub mod plugin;
pub mod result;
pub mod version;

pub use args::CniArgs;
pub use conf::{Attachment, NetConf, NetConfList};
pub use env::{Command, Env};
pub use error::{CniError, code};
pub use plugin::{Call, Plugin, Reply};
pub use result::{CniResult, Dns, Interface, IpConfig, Route};
pub use version::Version;
