//! Reads of a cached object's text without building its tree: only the
//! members on the way to what is read are looked at; every other member is
//! skipped by serde_json without being decoded (and without a recursion
//! limit).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

use super::Text;

/// Whether the field of `json` at `path` is the string `name`, or a list
/// of strings that contains it (a field of any other type, or a missing
/// one, does not name it).
pub fn field_names(json: &str, path: &[String], name: &str) -> bool {
    let mut de = serde_json::Deserializer::from_str(json);
    match (FieldAt { path, name }).deserialize(&mut de) {
        Ok(found) => found,
        // Stopped at the field (see `FieldAt::visit_map`), or not JSON.
        Err(stop) => stop.to_string().starts_with(FOUND),
    }
}

/// The message of the error that stops the read once the field was found:
/// the rest of the text is not looked at.
const FOUND: &str = "\0found";

/// Whether every field of `want` holds in the JSON text `have`: objects
/// recursively (a `null` in `want` matches a missing field), lists element
/// by element with equal lengths, everything else by equality. What
/// `applier::noop::contains` answers for `have` parsed, without the tree.
pub fn contains_json(have: &str, want: &Value) -> bool {
    let mut de = serde_json::Deserializer::from_str(have);
    Contains(want).deserialize(&mut de).unwrap_or(false)
}

/// Follows `path`; at its end, compares with `name`.
struct FieldAt<'p> {
    path: &'p [String],
    name: &'p str,
}

impl<'de> DeserializeSeed<'de> for FieldAt<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Skips every remaining element of a list.
fn drain_seq<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Skips every remaining member of an object.
fn drain_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Implements the visits of scalars as `false` for a boolean visitor.
macro_rules! scalars_are_false {
    () => {
        fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(false)
        }
    };
}

impl<'de> Visitor<'de> for FieldAt<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    scalars_are_false!();

    fn visit_str<E>(self, s: &str) -> Result<bool, E> {
        Ok(self.path.is_empty() && s == self.name)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut found = false;
        if self.path.is_empty() {
            while let Some(named) = seq.next_element_seed(IsString(self.name))? {
                found |= named;
            }
        }
        drain_seq(&mut seq)?;
        Ok(found)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            drain_map(&mut map)?;
            return Ok(false);
        };
        while let Some(key) = map.next_key::<Text<'_>>()? {
            if key.0 == first.as_str() {
                let found = map.next_value_seed(FieldAt {
                    path: rest,
                    name: self.name,
                })?;
                // The answer is known (the text has no repeated keys):
                // stop reading, rather than skip the rest of the object.
                return Err(de::Error::custom(if found { FOUND } else { "absent" }));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(false)
    }
}

/// Whether a list element is the string `.0`.
struct IsString<'n>(&'n str);

impl<'de> DeserializeSeed<'de> for IsString<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IsString<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    scalars_are_false!();

    fn visit_str<E>(self, s: &str) -> Result<bool, E> {
        Ok(s == self.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        drain_seq(&mut seq)?;
        Ok(false)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        drain_map(&mut map)?;
        Ok(false)
    }
}

/// Whether the value read holds every field of `.0`.
struct Contains<'w>(&'w Value);

impl<'de> DeserializeSeed<'de> for Contains<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Contains<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<bool, E> {
        Ok(self.0.as_bool() == Some(v))
    }
    // As a tree would hold them: serde_json's numbers compare by kind
    // (integer or float) and value.
    fn visit_i64<E>(self, v: i64) -> Result<bool, E> {
        Ok(self.0.as_number() == Some(&Number::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<bool, E> {
        Ok(self.0.as_number() == Some(&Number::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<bool, E> {
        Ok(Number::from_f64(v).is_some_and(|n| self.0.as_number() == Some(&n)))
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(self.0.is_null())
    }
    fn visit_str<E>(self, s: &str) -> Result<bool, E> {
        Ok(self.0.as_str() == Some(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let Value::Array(want) = self.0 else {
            drain_seq(&mut seq)?;
            return Ok(false);
        };
        let mut holds = true;
        let mut wanted = want.iter();
        loop {
            match wanted.next() {
                Some(w) => match seq.next_element_seed(Contains(w))? {
                    Some(h) => holds &= h,
                    // Shorter than wanted.
                    None => return Ok(false),
                },
                None => {
                    // Longer than wanted?
                    let more = seq.next_element::<IgnoredAny>()?.is_some();
                    drain_seq(&mut seq)?;
                    return Ok(holds && !more);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let Value::Object(want) = self.0 else {
            drain_map(&mut map)?;
            return Ok(false);
        };
        let mut holds = true;
        let mut seen: Vec<&str> = Vec::new();
        while let Some(key) = map.next_key::<Text<'_>>()? {
            match want.get_key_value(&*key.0) {
                Some((k, w)) => {
                    seen.push(k.as_str());
                    holds &= map.next_value_seed(Contains(w))?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // A wanted member the object lacks holds only as `null`.
        Ok(holds
            && want
                .iter()
                .all(|(k, w)| w.is_null() || seen.contains(&k.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(String::from).collect()
    }

    #[test]
    fn field_names_reads_a_string_or_a_list_of_strings_at_a_path() {
        let o = json!({
            "spec": {"configMap": "c", "refs": ["a", 1, ["b"], "d"], "n": 5, "o": {"x": "c"}},
            "metadata": {"name": "x", "we\"ird": "q"}
        })
        .to_string();
        assert!(field_names(&o, &path("spec.configMap"), "c"));
        assert!(!field_names(&o, &path("spec.configMap"), "d"));
        assert!(field_names(&o, &path("spec.refs"), "a"));
        assert!(field_names(&o, &path("spec.refs"), "d"));
        assert!(
            !field_names(&o, &path("spec.refs"), "b"),
            "nested lists do not count"
        );
        assert!(!field_names(&o, &path("spec.n"), "5"));
        assert!(!field_names(&o, &path("spec.o"), "c"));
        assert!(!field_names(&o, &path("spec.missing"), "c"));
        assert!(!field_names(&o, &path("spec.configMap.deeper"), "c"));
        assert!(field_names(&o, &["metadata".into(), "we\"ird".into()], "q"));
        assert!(!field_names("null", &path("spec"), "c"));
        // Found before the end: the rest is not read.
        let cut = r#"{"spec":{"configMap":"c"},"zzz":[1,2,"#;
        assert!(field_names(cut, &path("spec.configMap"), "c"));
        assert!(!field_names(cut, &path("spec.configMap"), "d"));
    }
}
