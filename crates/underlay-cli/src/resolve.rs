//! Finding a network or an endpoint the way Docker users name them: by name, by full
//! ID, or by any unique prefix of the ID (one character is enough when it is unique).

use crate::failure::{Failure, Result};
use crate::model::short;

/// The one item `wanted` names among `items` (each given as name and ID): an exact
/// name first, then a full ID, then a unique ID prefix. `kind` ("network",
/// "endpoint") and `list` (the command that lists them) go into the errors.
pub fn pick<'a, T>(
    kind: &str,
    list: &str,
    wanted: &str,
    items: &'a [T],
    key: impl Fn(&T) -> (&str, &str),
) -> Result<&'a T> {
    if let Some(one) = items.iter().find(|t| key(t).0 == wanted) {
        return Ok(one);
    }
    if let Some(one) = items.iter().find(|t| key(t).1 == wanted) {
        return Ok(one);
    }
    let by_prefix: Vec<&T> = items.iter().filter(|t| !wanted.is_empty() && key(t).1.starts_with(wanted)).collect();
    match by_prefix.as_slice() {
        [one] => Ok(one),
        [] => Err(Failure::not_found(format!("no {kind} named \"{wanted}\"")).hint(format!("see `{list}`"))),
        many => {
            let names: Vec<String> = many.iter().map(|t| format!("{} ({})", key(t).0, short(key(t).1, 12))).collect();
            Err(Failure::usage(format!("\"{wanted}\" is ambiguous: it begins the IDs of {kind}s {}", names.join(", ")))
                .hint("give more of the ID, or the name"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(items: &'a [(&'a str, &'a str)], wanted: &str) -> Result<&'a str> {
        pick("endpoint", "underlay ps", wanted, items, |t| (t.0, t.1)).map(|t| t.0)
    }

    #[test]
    fn names_ids_and_prefixes() {
        let items = [("web", "ab12cd"), ("db", "ab34ef"), ("ab", "ff00aa")];
        assert_eq!(find(&items, "web").unwrap(), "web");
        // A name wins over an ID prefix that it also is.
        assert_eq!(find(&items, "ab").unwrap(), "ab");
        assert_eq!(find(&items, "ab34ef").unwrap(), "db");
        assert_eq!(find(&items, "f").unwrap(), "ab");
        assert_eq!(find(&items, "ab1").unwrap(), "web");
        let e = find(&items, "a").unwrap_err();
        assert_eq!(e.code, crate::failure::exit::USAGE);
        assert!(e.message.contains("ambiguous") && e.message.contains("web") && e.message.contains("db"), "{e}");
        let e = find(&items, "zz").unwrap_err();
        assert_eq!(e.code, crate::failure::exit::NOT_FOUND);
        assert!(find(&items, "").is_err());
    }
}
