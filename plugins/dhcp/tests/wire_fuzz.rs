//! Regression inputs found by fuzz/dhcp_wire: replies off the LAN that made the
//! daemon panic. First 10 bytes: transaction ID and client MAC; then the packet.

#[test]
fn a_reply_with_hlen_above_16_is_ignored_not_a_panic() {
    let data = include_bytes!("hlen-crash.bin");
    let (head, packet) = data.split_at(10);
    let xid = u32::from_be_bytes(head[..4].try_into().unwrap());
    let mac: [u8; 6] = head[4..10].try_into().unwrap();
    assert!(dhcp::wire::parse(packet, xid, &mac).is_none());
}
