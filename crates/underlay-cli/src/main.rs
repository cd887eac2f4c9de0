//! `underlay`: macvlan (and ipvlan) networking for plain Linux hosts, with the flags
//! Docker users know. Parse, dispatch, exit code; the commands live in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    underlay_cli::command::dispatch(underlay_cli::command::Cli::parse_with_hints())
}
