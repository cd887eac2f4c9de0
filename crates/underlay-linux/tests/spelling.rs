//! The link-mode words (`spelled!` in src/spelling.rs): every enum parses, prints and
//! goes through JSON as the words configs use, and a wrong word names the choices.

use underlay_linux::MacvlanMode;
use underlay_linux::ipvlan::{IpvlanFlag, IpvlanMode};

#[test]
fn every_word_round_trips_through_text_and_json() {
    for m in MacvlanMode::ALL {
        assert_eq!(m.to_string().parse::<MacvlanMode>(), Ok(*m));
        assert_eq!(serde_json::from_value::<MacvlanMode>(serde_json::to_value(m).unwrap()).unwrap(), *m);
    }
    for m in IpvlanMode::ALL {
        assert_eq!(serde_json::to_value(m).unwrap(), serde_json::json!(m.as_str()));
    }
    assert_eq!("vepa".parse::<IpvlanFlag>(), Ok(IpvlanFlag::Vepa));
}

#[test]
fn an_unknown_word_names_itself_and_the_choices() {
    let e = "bridged".parse::<MacvlanMode>().unwrap_err();
    assert_eq!(e, "unknown macvlan mode \"bridged\"; expected bridge, private, vepa, passthru, source");
    assert!(serde_json::from_str::<IpvlanMode>("\"l4\"").is_err());
}
