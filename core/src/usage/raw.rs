//! Lenient field types for the provider usage structs.
//!
//! Provider JSON is deserialized into small typed structs (unknown fields skipped, no `serde_json::Value`
//! built) for speed. A token field must not make deserialization itself fail on a bad value — the error
//! has to name the field and value — so [`Count`], [`Seconds`] and [`Text`] accept any JSON and keep
//! what they saw; the validation (`Count::get`) produces the typed error.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::{Error, ErrorCode, Result};

/// Token counts above this are rejected as absurd (no call processes a trillion tokens).
pub const MAX_TOKENS: u64 = 1_000_000_000_000;

/// `prefix.name`, built only on the error path.
pub fn path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// `a - b`, or an error naming `prefix.name` (the part `b` that exceeds its whole `a`). The field path
/// is only formatted on the error path: this runs on every parse.
pub fn sub(a: u64, b: u64, prefix: &str, name: &str, reason: &str) -> Result<u64> {
    a.checked_sub(b).ok_or_else(|| Error::invalid_value(path(prefix, name), b, reason))
}

/// A token-count field as it appeared: absent/null, a non-negative integer, or anything else (rendered).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Count {
    #[default]
    Absent,
    Int(u64),
    Bad(String),
}

impl Count {
    /// The validated count, `None` when absent or null.
    pub fn get(&self, prefix: &str, name: &str) -> Result<Option<u64>> {
        match self {
            Self::Absent => Ok(None),
            Self::Int(n) if *n <= MAX_TOKENS => Ok(Some(*n)),
            Self::Int(n) => Err(Error::invalid_value(path(prefix, name), n, "absurd token count (> 10^12)")),
            Self::Bad(v) => Err(Error::invalid_value(path(prefix, name), v, "must be a non-negative integer")),
        }
    }

    /// The validated count, 0 when absent.
    pub fn or_zero(&self, prefix: &str, name: &str) -> Result<u64> {
        Ok(self.get(prefix, name)?.unwrap_or(0))
    }

    /// The validated count; absent is a [`ErrorCode::MissingField`] error.
    pub fn required(&self, prefix: &str, name: &str) -> Result<u64> {
        self.get(prefix, name)?.ok_or_else(|| Error::missing_field(path(prefix, name)))
    }
}

/// Renders any JSON value briefly, for error messages; drains containers.
struct Render;

impl<'de> Visitor<'de> for Render {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(format!("{:?}", truncate(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok("null".into())
    }
    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        Ok("null".into())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(Render)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok("[…]".into())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<String, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok("{…}".into())
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

struct CountVisitor;

impl<'de> Visitor<'de> for CountVisitor {
    type Value = Count;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a token count")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
        Ok(Count::Int(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
        Ok(u64::try_from(v).map_or_else(|_| Count::Bad(v.to_string()), Count::Int))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Count, E> {
        Ok(Count::Absent)
    }
    fn visit_none<E: de::Error>(self) -> Result<Count, E> {
        Ok(Count::Absent)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Count, D::Error> {
        d.deserialize_any(CountVisitor)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Count, E> {
        Render.visit_bool(v).map(Count::Bad)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Count, E> {
        Render.visit_f64(v).map(Count::Bad)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Count, E> {
        Render.visit_str(v).map(Count::Bad)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Count, A::Error> {
        Render.visit_seq(seq).map(Count::Bad)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Count, A::Error> {
        Render.visit_map(map).map(Count::Bad)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CountVisitor)
    }
}

/// A non-negative decimal quantity (audio or video seconds) as it appeared: a JSON number, or a string
/// holding one (OpenAI video jobs write `"seconds": "8"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Seconds {
    #[default]
    Absent,
    Value(Decimal),
    Bad(String),
}

impl Seconds {
    pub fn get(&self, prefix: &str, name: &str) -> Result<Option<Decimal>> {
        match self {
            Self::Absent => Ok(None),
            Self::Value(d) if d.is_sign_negative() && !d.is_zero() => {
                Err(Error::invalid_value(path(prefix, name), d, "must not be negative"))
            }
            Self::Value(d) if *d > Decimal::from(MAX_TOKENS) => {
                Err(Error::invalid_value(path(prefix, name), d, "absurd duration (> 10^12 s)"))
            }
            Self::Value(d) => Ok(Some(*d)),
            Self::Bad(v) => Err(Error::invalid_value(path(prefix, name), v, "must be a non-negative number")),
        }
    }
}

struct SecondsVisitor;

impl<'de> Visitor<'de> for SecondsVisitor {
    type Value = Seconds;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number of seconds")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
        Ok(Seconds::Value(Decimal::from(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
        Ok(Seconds::Value(Decimal::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
        // The shortest round-trip rendering is the number as the provider wrote it (9.52, not 9.5199…).
        let s = v.to_string();
        Ok(Decimal::from_str(&s).or_else(|_| Decimal::from_scientific(&s)).map_or(Seconds::Bad(s), Seconds::Value))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Seconds, E> {
        Ok(Seconds::Absent)
    }
    fn visit_none<E: de::Error>(self) -> Result<Seconds, E> {
        Ok(Seconds::Absent)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Seconds, D::Error> {
        d.deserialize_any(SecondsVisitor)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Seconds, E> {
        Render.visit_bool(v).map(Seconds::Bad)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
        match Decimal::from_str(v.trim()) {
            Ok(d) => Ok(Seconds::Value(d)),
            Err(_) => Render.visit_str(v).map(Seconds::Bad),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Seconds, A::Error> {
        Render.visit_seq(seq).map(Seconds::Bad)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Seconds, A::Error> {
        Render.visit_map(map).map(Seconds::Bad)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecondsVisitor)
    }
}

/// A string field, borrowed from the input when it has no escapes; any non-string value reads as absent
/// (these fields are informational: a type name, a tier, a delta's text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text<'a>(pub Option<Cow<'a, str>>);

impl Text<'_> {
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Some(Cow::Borrowed(v))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text(Some(Cow::Owned(v.to_owned()))))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
        Ok(Text(Some(Cow::Owned(v))))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Text<'de>, D::Error> {
        d.deserialize_any(TextVisitor)
    }
    fn visit_none<E: de::Error>(self) -> Result<Text<'de>, E> {
        Ok(Text(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Text<'de>, E> {
        Ok(Text(None))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text<'de>, E> {
        Ok(Text(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text<'de>, E> {
        Ok(Text(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text<'de>, E> {
        Ok(Text(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Text<'de>, E> {
        Ok(Text(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Text(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text(None))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

/// The number of elements of a JSON list (of anything); any other value counts 0. For lists whose
/// length is the quantity billed (Gemini `webSearchQueries`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Len(pub u64);

struct LenVisitor;

impl<'de> Visitor<'de> for LenVisitor {
    type Value = Len;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Len, A::Error> {
        let mut n = 0u64;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n = n.saturating_add(1);
        }
        Ok(Len(n))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Len, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Len(0))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Len, D::Error> {
        d.deserialize_any(LenVisitor)
    }
    fn visit_none<E: de::Error>(self) -> Result<Len, E> {
        Ok(Len(0))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Len, E> {
        Ok(Len(0))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Len, E> {
        Ok(Len(0))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Len, E> {
        Ok(Len(0))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Len, E> {
        Ok(Len(0))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Len, E> {
        Ok(Len(0))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Len, E> {
        Ok(Len(0))
    }
}

impl<'de> Deserialize<'de> for Len {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenVisitor)
    }
}

/// `deserialize_with` for nested `Option<struct>` fields: only a JSON object (or null) is accepted.
/// Serde's derived structs would also take an array positionally (`"usage": [1, 2, 3]`), silently
/// assigning counts by field order; that must be an error instead.
pub fn obj<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ObjVisitor<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    d.deserialize_any(ObjVisitor(std::marker::PhantomData))
}

/// One element of a list read by [`objs`]: an object, or null (skipped).
struct MapOnly<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        obj(d).map(MapOnly)
    }
}

/// `deserialize_with` for `Option<Vec<struct>>` fields: a list (or null) whose elements are objects,
/// for the same reason as [`obj`]; null elements are skipped.
pub fn objs<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let list: Option<Vec<MapOnly<T>>> = Deserialize::deserialize(d)?;
    Ok(list.map(|l| l.into_iter().filter_map(|m| m.0).collect()))
}

/// Maps a `serde_json` error: broken syntax is [`ErrorCode::InvalidJson`]; a well-formed document whose
/// structure is wrong (an object where a list belongs, …) is [`ErrorCode::InvalidValue`].
pub fn from_serde(e: serde_json::Error) -> Error {
    match e.classify() {
        serde_json::error::Category::Data => Error::invalid_value("response", e, "unexpected JSON structure"),
        _ => Error::new(ErrorCode::InvalidJson, format!("invalid JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(json: &str) -> Count {
        serde_json::from_str(json).unwrap_or(Count::Bad("parse".into()))
    }

    #[test]
    fn counts_validate_with_field_names() {
        assert_eq!(count("12").get("usage", "prompt_tokens"), Ok(Some(12)));
        assert_eq!(count("null").get("usage", "prompt_tokens"), Ok(None));
        let e = count("-3").get("usage", "prompt_tokens").err();
        assert_eq!(e.as_ref().map(Error::code), Some(ErrorCode::InvalidValue));
        assert_eq!(e.as_ref().and_then(Error::field), Some("usage.prompt_tokens"));
        assert_eq!(e.as_ref().and_then(Error::value), Some("-3"));
        for bad in ["1.5", "\"12\"", "true", "[1]", "{\"a\":1}", "1000000000001"] {
            assert_eq!(count(bad).get("u", "x").map_err(|e| e.code()), Err(ErrorCode::InvalidValue), "{bad}");
        }
        assert_eq!(count("1000000000000").get("u", "x"), Ok(Some(MAX_TOKENS)));
        assert_eq!(Count::Absent.required("usage", "x").map_err(|e| e.code()), Err(ErrorCode::MissingField));
    }

    #[test]
    fn seconds_keep_the_written_decimal() {
        let s: Seconds = serde_json::from_str("9.52").unwrap_or_default();
        assert_eq!(s.get("", "duration"), Ok(Some(Decimal::new(952, 2))));
        let s: Seconds = serde_json::from_str("-1.5").unwrap_or_default();
        assert_eq!(s.get("", "duration").map_err(|e| e.code()), Err(ErrorCode::InvalidValue));
    }

    #[test]
    fn text_borrows_and_ignores_non_strings() {
        let t: Text<'_> = serde_json::from_str("\"flex\"").unwrap_or_default();
        assert!(matches!(t.0, Some(Cow::Borrowed("flex"))));
        let t: Text<'_> = serde_json::from_str("{\"a\":[1,2]}").unwrap_or_default();
        assert_eq!(t.as_str(), None);
    }
}
