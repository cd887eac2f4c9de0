//! A resolv.conf reader for host-local's `resolvConf`: nameservers, domain, search, options.

use std::path::Path;

use crate::cni::{CniError, Dns};
use crate::safe_read::{CONFIG_FILE_CAP, read_config_text};

pub fn parse(text: &str) -> Dns {
    let mut dns = Dns::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => dns.nameservers.extend(words.next().map(str::to_string)),
            Some("domain") => dns.domain = words.next().map(str::to_string),
            Some("search") => dns.search = words.map(str::to_string).collect(),
            Some("options") => dns.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    dns
}

pub fn read(path: &Path) -> Result<Dns, CniError> {
    read_config_text(path, "ipam.resolvConf", CONFIG_FILE_CAP).map(|t| parse(&t))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_every_kind_of_line() {
        let dns = super::parse(
            "# generated\nnameserver 192.168.1.1\nnameserver 2001:db8::1 ; second\ndomain lan\nsearch lan corp\noptions ndots:2 edns0\n",
        );
        assert_eq!(dns.nameservers, ["192.168.1.1", "2001:db8::1"]);
        assert_eq!(dns.domain.as_deref(), Some("lan"));
        assert_eq!(dns.search, ["lan", "corp"]);
        assert_eq!(dns.options, ["ndots:2", "edns0"]);
    }
}
