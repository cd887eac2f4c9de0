//! The `host-local` IPAM plugin: a CNI adapter over `underlay::ipam::host_local`.

use underlay::cni::{Attachment, Call, CniError, CniResult, Plugin};
use underlay::ipam::{HostLocalConf, host_local};

pub struct HostLocal;

fn conf(call: &Call) -> Result<HostLocalConf, CniError> {
    HostLocalConf::parse(&call.raw, call.version, &call.env.args)
}

fn owner(call: &Call) -> Attachment {
    Attachment { container_id: call.env.container_id.clone(), ifname: call.env.ifname.clone() }
}

impl Plugin for HostLocal {
    fn add(&self, call: &Call) -> Result<CniResult, CniError> {
        host_local::add(&conf(call)?, &owner(call))
    }

    fn del(&self, call: &Call) -> Result<(), CniError> {
        host_local::del(&conf(call)?, &owner(call)).map(drop)
    }

    fn check(&self, call: &Call) -> Result<(), CniError> {
        host_local::check(&conf(call)?, &owner(call), call.prev_result()?.as_ref())
    }

    fn status(&self, call: &Call) -> Result<(), CniError> {
        host_local::status(&conf(call)?)
    }

    fn gc(&self, call: &Call) -> Result<(), CniError> {
        host_local::gc(&conf(call)?, &call.conf.valid_attachments()?).map(drop)
    }
}
