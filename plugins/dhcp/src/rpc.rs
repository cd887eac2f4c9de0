//! What the plugin asks the daemon over its Unix socket: one JSON line each way.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use underlay::cni::{Attachment, CniError};

use crate::lease::Lease;
use crate::record::Key;

/// Where the reference's daemon listens; the same default keeps configs portable.
pub const DEFAULT_SOCKET: &str = "/run/cni/dhcp.sock";

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    Add { key: Key, netns: PathBuf, client_id: Vec<u8>, hostname: Option<String>, request: Vec<u8>, timeout_ms: u64 },
    Del { key: Key },
    Check { key: Key },
    Status,
    Gc { network: String, valid: Vec<Attachment> },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    Ok(Option<Lease>),
    Err(CniError),
}

/// Sends one request and waits up to `wait` for the answer.
pub fn call(socket: &Path, req: &Request, wait: Duration) -> Result<Option<Lease>, CniError> {
    let unreachable =
        |e: io::Error| CniError::not_available(format!("dhcp daemon at {} is not reachable: {e}", socket.display()));
    let mut s = UnixStream::connect(socket).map_err(unreachable)?;
    s.set_read_timeout(Some(wait)).map_err(unreachable)?;
    let mut line = serde_json::to_vec(req).expect("requests serialize");
    line.push(b'\n');
    s.write_all(&line).map_err(unreachable)?;
    let mut answer = String::new();
    BufReader::new(s)
        .read_line(&mut answer)
        .map_err(|e| CniError::try_again(format!("dhcp daemon at {} did not answer: {e}", socket.display())))?;
    match serde_json::from_str(&answer) {
        Ok(Response::Ok(lease)) => Ok(lease),
        Ok(Response::Err(e)) => Err(e),
        Err(e) => Err(CniError::io(format!("dhcp daemon at {} answered nonsense: {e}", socket.display()))),
    }
}
