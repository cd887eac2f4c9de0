//! The HTTP side: Docker's plugin protocol over a unix socket. Every call is
//! `POST /<Method>` with a JSON body (dockerd sends no Content-Type); every answer is
//! HTTP 200 with JSON, errors as `{"Err": "...", "Error": "..."}`. Anything a client sends, however
//! malformed, gets such an answer; the daemon keeps serving.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::driver::Driver;
use crate::ipam::Ipam;

/// The state both drivers share.
pub struct Plugin {
    pub driver: Driver,
    pub ipam: Ipam,
}

fn decode<T: DeserializeOwned>(method: &str, body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("{method}: malformed request: {e}"))
}

/// One call, synchronously: the method name picks the handler.
pub fn dispatch(plugin: &Plugin, method: &str, body: &[u8]) -> Result<Value, String> {
    let d = &plugin.driver;
    let i = &plugin.ipam;
    match method {
        "Plugin.Activate" => Ok(json!({"Implements": ["NetworkDriver", "IpamDriver"]})),
        "NetworkDriver.GetCapabilities" => Ok(json!({"Scope": "local", "ConnectivityScope": "local"})),
        "NetworkDriver.CreateNetwork" => d.create_network(decode(method, body)?, i),
        "NetworkDriver.DeleteNetwork" => d.delete_network(decode(method, body)?, i),
        "NetworkDriver.CreateEndpoint" => d.create_endpoint(decode(method, body)?),
        "NetworkDriver.DeleteEndpoint" => d.delete_endpoint(decode(method, body)?),
        "NetworkDriver.EndpointOperInfo" => d.endpoint_info(decode(method, body)?),
        "NetworkDriver.Join" => d.join(decode(method, body)?),
        "NetworkDriver.Leave" => d.leave(decode(method, body)?),
        // Connectivity is the LAN's own; there is nothing to program or revoke.
        "NetworkDriver.ProgramExternalConnectivity" | "NetworkDriver.RevokeExternalConnectivity" => {
            decode::<crate::api::EndpointRef>(method, body).map(|_| json!({}))
        }
        "NetworkDriver.DiscoverNew" | "NetworkDriver.DiscoverDelete" => Ok(json!({})),
        "NetworkDriver.AllocateNetwork" | "NetworkDriver.FreeNetwork" => {
            Err(format!("{method}: underlay is a local-scope driver (no swarm)"))
        }
        "IpamDriver.GetCapabilities" => Ok(Ipam::capabilities()),
        "IpamDriver.GetDefaultAddressSpaces" => Ok(Ipam::address_spaces()),
        "IpamDriver.RequestPool" => i.request_pool(decode(method, body)?),
        "IpamDriver.ReleasePool" => i.release_pool(decode(method, body)?),
        "IpamDriver.RequestAddress" => i.request_address(decode(method, body)?, |subnet| d.prober(subnet)),
        "IpamDriver.ReleaseAddress" => i.release_address(decode(method, body)?),
        other => Err(format!("unknown method {other:?}")),
    }
}

fn answer(value: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/vnd.docker.plugins.v1.2+json")], value.to_string()).into_response()
}

/// libnetwork's network-driver replies carry errors in `Err`, its IPAM replies in
/// `Error` (`ipams/remote/api.Response`); both are sent, each side reads its own.
fn error(text: String) -> Value {
    json!({"Err": text, "Error": text})
}

async fn handle(plugin: Arc<Plugin>, uri: Uri, body: Bytes) -> Response {
    let method = uri.path().trim_start_matches('/').to_string();
    // Handlers talk to the kernel and the disk: keep them off the async threads.
    let out = tokio::task::spawn_blocking(move || dispatch(&plugin, &method, &body)).await;
    match out {
        Ok(Ok(v)) => answer(v),
        Ok(Err(e)) => answer(error(e)),
        Err(e) => answer(error(format!("internal error: {e}"))),
    }
}

/// Serves `plugin` on the socket at `path` (an old socket file there is replaced)
/// until the future is dropped.
pub async fn serve(plugin: Arc<Plugin>, path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    let app = Router::new().fallback(move |uri: Uri, body: Bytes| handle(plugin.clone(), uri, body));
    axum::serve(listener, app).await
}
