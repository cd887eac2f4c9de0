//! Link-mode enums spelled as the words configs and users write (`bridge`, `l3s`). One
//! macro gives each enum its words, `ALL`, `Display`, a `FromStr` whose error lists the
//! words, and serde as those words, so every front-end parses and stores them alike.

/// `spelled!(Type, "what", { Variant => "word", ... })`.
macro_rules! spelled {
    ($t:ident, $what:literal, { $($v:ident => $word:literal),+ $(,)? }) => {
        impl $t {
            pub const ALL: &'static [$t] = &[$($t::$v),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($t::$v => $word),+
                }
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                $t::ALL.iter().copied().find(|m| m.as_str() == s).ok_or_else(|| {
                    let all: Vec<&str> = $t::ALL.iter().map(|m| m.as_str()).collect();
                    format!(concat!("unknown ", $what, " \"{}\"; expected {}"), s, all.join(", "))
                })
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let word = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                word.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use spelled;
