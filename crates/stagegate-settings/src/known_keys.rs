//! The keys each table accepts, read from the raw types themselves so that the list used for
//! "did you mean" suggestions can never drift from what serde actually reads.

use serde::Deserialize;
use serde::de::value::Error;
use serde::de::{Deserializer, Error as _, Visitor};

use crate::raw::{
    RawAdaptive, RawAgent, RawBackend, RawCache, RawCluster, RawConfig, RawDefaults, RawPrice,
    RawStage, RawTimeouts,
};

/// The keys valid at a key path's parent: for `["stages", "plan", "concurency"]`, the keys of a
/// stage table.
pub(crate) fn keys_beside(path: &[String]) -> &'static [&'static str] {
    let parent: Vec<&str> = path
        .iter()
        .take(path.len().saturating_sub(1))
        .map(String::as_str)
        .collect();
    match parent.as_slice() {
        [] => struct_fields::<RawConfig>(),
        ["defaults"] => struct_fields::<RawDefaults>(),
        ["timeouts"] => struct_fields::<RawTimeouts>(),
        ["cache"] => struct_fields::<RawCache>(),
        ["adaptive"] => struct_fields::<RawAdaptive>(),
        ["cluster"] => struct_fields::<RawCluster>(),
        ["prices", _] => struct_fields::<RawPrice>(),
        ["backends", _] => struct_fields::<RawBackend>(),
        ["stages", _] => struct_fields::<RawStage>(),
        ["agents", _] => struct_fields::<RawAgent>(),
        _ => &[],
    }
}

/// The field names serde's derive gives a struct, captured by a deserializer that asks for
/// nothing but them.
fn struct_fields<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The capture always "fails" once it has the names; the error is the expected outcome.
    let _ = T::deserialize(FieldCapture(&mut fields));
    fields
}

struct FieldCapture<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldCapture<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        *self.0 = fields;
        Err(Error::custom("fields captured"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(segments: &[&str]) -> Vec<String> {
        segments
            .iter()
            .map(|segment| (*segment).to_owned())
            .collect()
    }

    #[test]
    fn knows_each_tables_keys() {
        assert!(keys_beside(&path(&["pipelin"])).contains(&"pipeline"));
        assert!(keys_beside(&path(&["stages", "plan", "x"])).contains(&"concurrency"));
        assert!(keys_beside(&path(&["agents", "a", "x"])).contains(&"timeout_class"));
        assert!(keys_beside(&path(&["backends", "b", "x"])).contains(&"api_key_env"));
        assert!(keys_beside(&path(&["timeouts", "x"])).contains(&"kill_grace"));
        // Fields that serde skips are not keys.
        assert!(!keys_beside(&path(&["stages", "plan", "x"])).contains(&"declared_in"));
    }
}
