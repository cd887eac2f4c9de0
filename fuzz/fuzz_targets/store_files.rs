//! The plugins' own files as a hostile or damaged disk may hold them: host-local's
//! reservation records (`<containerID>\r\n<ifname>`, pre-0.7 bare ID), its owner-index
//! buckets and `last_reserved_ip.N`, and underlay-host-access's network record. The
//! first byte picks the parser. Whatever comes in: a value or a refusal, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use underlay::ipam::{owner_index, store};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    match pick % 4 {
        0 => {
            if let Some(owner) = store::decode_owner(&text) {
                // What decodes must encode to a record that decodes the same.
                let again = store::decode_owner(&store::encode_owner(&owner));
                assert_eq!(again.as_ref().map(|o| &o.container_id), Some(&owner.container_id));
            }
        }
        1 => {
            for (owner, ip) in owner_index::parse_bucket(&text) {
                assert!(!owner.container_id.contains('\n') && !ip.to_string().is_empty());
            }
        }
        2 => {
            let _ = text.trim().parse::<std::net::IpAddr>();
        }
        _ => {
            let _ = host_access::store::decode(rest);
        }
    }
});
