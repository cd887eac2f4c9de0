//! The macvlan/ipvlan link core behind the `macvlan` (and `ipvlan`) CNI plugins and the
//! `underlay` CLI: the reference's config, defaults and results, and none of its defects
//! (failed ADDs leave nothing behind, IPAM DNS is kept, MTU is reported, STATUS checks
//! the master, errors carry meaningful codes). Adds `source` mode. One link type with a
//! kind, not two copies: `Macvlan` and `Ipvlan` differ only in their `Driver`.
//!
//! Each verb sits in its own file with the undo next to each step, as the CNI spec
//! lays them out: `add`, `del`, `check`, `status`, `gc`.

mod add;
mod check;
mod conf;
pub mod conflict;
mod del;
mod gc;
mod master;
mod pod;
mod status;

use underlay::cni::{Call, CniError, CniResult, Plugin};

pub use conf::{Conf, Driver, Kind};

/// The `macvlan` plugin.
pub struct Macvlan;

/// The `ipvlan` plugin (keys `master`, `mode` l2|l3|l3s, `flag` bridge|private|vepa,
/// `mtu`, `linkInContainer`, `ipam`).
pub struct Ipvlan;

/// The two plugins are the same verbs over a different `Driver`.
macro_rules! verbs_for {
    ($plugin:ty, $driver:expr) => {
        impl Plugin for $plugin {
            fn add(&self, call: &Call) -> Result<CniResult, CniError> {
                add::add(call, $driver)
            }

            fn del(&self, call: &Call) -> Result<(), CniError> {
                del::del(call, $driver)
            }

            fn check(&self, call: &Call) -> Result<(), CniError> {
                check::check(call, $driver)
            }

            fn status(&self, call: &Call) -> Result<(), CniError> {
                status::status(call, $driver)
            }

            fn gc(&self, call: &Call) -> Result<(), CniError> {
                gc::gc(call, $driver)
            }
        }
    };
}

verbs_for!(Macvlan, Driver::Macvlan);
verbs_for!(Ipvlan, Driver::Ipvlan);
