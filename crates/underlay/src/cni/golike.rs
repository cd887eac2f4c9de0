//! Config decoding with Go's `encoding/json` rules, so configs that went through Go
//! code (Multus, generated files, delegating plugins) mean the same here as in the
//! reference plugins: `null` is "not set", and struct keys match case-insensitively
//! (the exact spelling wins when both appear). Every config struct is read through
//! [`Go`], by way of [`super::conf::typed`].

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{Deserializer, IntoDeserializer, Visitor};
use serde_json::{Map, Value};

/// A JSON value that deserializes the way Go's decoder fills a struct.
pub struct Go(pub Value);

/// Go's `EqualFold` on the names we use (ASCII and simple Unicode lower-casing).
fn same_key(a: &str, b: &str) -> bool {
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

/// Renames keys that differ from a known field only in case to the field's spelling
/// and drops `null`s of known fields. A key spelled exactly beats any other spelling,
/// even when its value is `null` (set to "not set" on purpose). Unknown keys stay.
pub fn fold_keys(map: Map<String, Value>, fields: &[&str]) -> Map<String, Value> {
    let exact: Vec<&str> = fields.iter().copied().filter(|f| map.contains_key(*f)).collect();
    let mut out = Map::new();
    for (key, value) in map {
        let field = fields.iter().find(|f| **f == key).or_else(|| fields.iter().find(|f| same_key(f, &key)));
        match field {
            None => {
                out.insert(key, value);
            }
            Some(_) if value.is_null() => {}
            Some(f) if *f == key => {
                out.insert(key, value);
            }
            Some(f) if exact.contains(f) => {}
            // Several other spellings: the last one, as Go's decoder overwrites.
            Some(f) => {
                out.insert((*f).to_string(), value);
            }
        }
    }
    out
}

/// A key of a JSON object looked up as Go would fill a field named `key`: the exact
/// spelling first, then any case; `null` reads as absent.
pub fn get<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    let map = value.as_object()?;
    let found = map.get(key).or_else(|| map.iter().rev().find(|(k, _)| same_key(k, key)).map(|(_, v)| v));
    found.filter(|v| !v.is_null())
}

impl<'de> IntoDeserializer<'de, serde_json::Error> for Go {
    type Deserializer = Go;
    fn into_deserializer(self) -> Go {
        self
    }
}

fn visit_object<'de, V: Visitor<'de>>(map: Map<String, Value>, visitor: V) -> Result<V::Value, serde_json::Error> {
    let mut access = MapDeserializer::new(map.into_iter().map(|(k, v)| (k, Go(v))));
    let out = visitor.visit_map(&mut access)?;
    access.end()?;
    Ok(out)
}

fn visit_array<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, serde_json::Error> {
    let mut access = SeqDeserializer::new(items.into_iter().map(Go));
    let out = visitor.visit_seq(&mut access)?;
    access.end()?;
    Ok(out)
}

macro_rules! forward {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
            self.0.$method(visitor)
        }
    )*};
}

impl<'de> Deserializer<'de> for Go {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
        match self.0 {
            Value::Object(map) => visit_object(map, visitor),
            Value::Array(items) => visit_array(items, visitor),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Go(other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, serde_json::Error> {
        match self.0 {
            Value::Object(map) => visit_object(fold_keys(map, fields), visitor),
            other => other.deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
        match self.0 {
            Value::Object(map) => visit_object(map, visitor),
            other => other.deserialize_map(visitor),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, serde_json::Error> {
        match self.0 {
            Value::Array(items) => visit_array(items, visitor),
            other => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, serde_json::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, serde_json::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, serde_json::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, serde_json::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, serde_json::Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    forward! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_string
        deserialize_bytes deserialize_byte_buf deserialize_unit deserialize_identifier deserialize_ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Inner {
        range_start: Option<String>,
        #[serde(default)]
        routes: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Outer {
        #[serde(default)]
        master: String,
        #[serde(default)]
        mtu: u32,
        #[serde(default)]
        ranges: Vec<Vec<Inner>>,
    }

    fn go<T: for<'de> Deserialize<'de>>(v: Value) -> T {
        T::deserialize(Go(v)).unwrap()
    }

    #[test]
    fn null_means_not_set_at_every_depth() {
        let o: Outer = go(json!({"master": null, "mtu": null, "ranges": [[{"rangeStart": null, "routes": null}]]}));
        assert_eq!(
            o,
            Outer { master: String::new(), mtu: 0, ranges: vec![vec![Inner { range_start: None, routes: vec![] }]] }
        );
    }

    #[test]
    fn keys_in_any_case_and_exact_spelling_wins() {
        let o: Outer = go(json!({"MASTER": "a", "Mtu": 9, "Ranges": [[{"RangeStart": "x"}]]}));
        assert_eq!((o.master.as_str(), o.mtu), ("a", 9));
        assert_eq!(o.ranges[0][0].range_start.as_deref(), Some("x"));
        for v in [json!({"Master": "wrong", "master": "right"}), json!({"master": "right", "Master": "wrong"})] {
            assert_eq!(go::<Outer>(v).master, "right");
        }
        // An exact `null` still wins: the writer said "not set" under the right name.
        assert_eq!(go::<Outer>(json!({"master": null, "Master": "x"})).master, "");
    }

    #[test]
    fn lookups_fold_case_and_skip_null() {
        let v = json!({"RuntimeConfig": {"ips": []}, "ipam": null});
        assert!(get(&v, "runtimeConfig").is_some());
        assert!(get(&v, "ipam").is_none());
        assert_eq!(get(&json!({"Name": "a", "name": "b"}), "name"), Some(&json!("b")));
    }

    #[test]
    fn type_errors_still_fail() {
        assert!(Outer::deserialize(Go(json!({"mtu": "big"}))).is_err());
        assert!(Outer::deserialize(Go(json!({"Mtu": -1}))).is_err());
    }
}
