//! The `underlay` CLI's state files (network, endpoint and host-access records), as
//! damaged or hand-edited files may hold them. The first byte picks the record type.
//! A record that parses must write back to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::{Serialize, de::DeserializeOwned};
use underlay_cli::model::HostAccess;
use underlay_cli::model::{Endpoint, Network};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<T>(bytes) {
        let back: T = serde_json::from_slice(&serde_json::to_vec_pretty(&v).unwrap()).expect("written back");
        assert_eq!(back, v);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    match pick % 3 {
        0 => round_trip::<Network>(rest),
        1 => round_trip::<Endpoint>(rest),
        _ => round_trip::<HostAccess>(rest),
    }
});
