//! The dhcp plugin's daemon reads DHCP replies off the LAN: any bytes a neighbour sends.
//! The first 10 bytes are the transaction ID and the client MAC it waits for, the rest
//! the packet. A reply it accepts must give a lease or none, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, packet)) = data.split_at_checked(10) else { return };
    let xid = u32::from_be_bytes(head[..4].try_into().unwrap());
    let mac: [u8; 6] = head[4..10].try_into().unwrap();
    if let Some(reply) = dhcp::wire::parse(packet, xid, &mac) {
        let _ = dhcp::wire::lease_of(&reply.msg, 1_700_000_000);
    }
    // The same packet read as a state record of the daemon (JSON from its directory).
    let _ = serde_json::from_slice::<dhcp::record::Record>(data);
});
