//! A value of the config file with the place it was read from: what lets a
//! problem name its line without reading the text again.

use std::fmt;
use std::ops::{Deref, Range};

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A value and the bytes of the file it was read from (toml's spans, as in
/// `toml::Spanned`), or no place: a default the file does not write, or a
/// table toml made up from a longer key (`[ci.jenkins]` makes `ci`), which
/// has no span of its own. Compared, ordered, borrowed and debug-printed by
/// its value only, so it can key a map.
#[derive(Clone, Default)]
pub(crate) struct Written<T> {
    value: T,
    span: Option<Range<usize>>,
}

impl<T> Written<T> {
    /// Where the file writes it (the key, for a table's key; the header
    /// and what follows, for a table).
    pub(crate) fn span(&self) -> Option<Range<usize>> {
        self.span.clone()
    }

    pub(crate) fn into_inner(self) -> T {
        self.value
    }
}

/// A default: written nowhere.
impl<T> From<T> for Written<T> {
    fn from(value: T) -> Self {
        Written { value, span: None }
    }
}

/// Asks for the value with its span, in the protocol `toml::Spanned` uses
/// (toml then hands over start, end and value); a deserializer that has no
/// span for it hands over the value itself, which is read as it comes.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Written<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde_spanned::__unstable::{END_FIELD, NAME, START_FIELD, VALUE_FIELD};
        static FIELDS: [&str; 3] = [START_FIELD, END_FIELD, VALUE_FIELD];
        d.deserialize_struct(NAME, &FIELDS, WrittenVisitor(std::marker::PhantomData))
    }
}

struct WrittenVisitor<T>(std::marker::PhantomData<T>);

impl<T> WrittenVisitor<T> {
    fn unplaced<'de, E>(d: impl Deserializer<'de, Error = E>) -> Result<Written<T>, E>
    where
        T: Deserialize<'de>,
    {
        T::deserialize(d).map(Written::from)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for WrittenVisitor<T> {
    type Value = Written<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Written<T>, A::Error> {
        use serde_spanned::__unstable::{END_FIELD, START_FIELD, VALUE_FIELD};
        // Read while toml can still place it: a first key that is neither
        // the span's nor the struct's is refused here, at the key.
        let first = map.next_key_seed(FirstKey(struct_fields::<T>()))?;
        if first.as_deref() != Some(START_FIELD) {
            // A table without a span: its keys, the first one given back.
            return Self::unplaced(MapAccessDeserializer::new(Replay { first, map }));
        }
        let start: usize = map.next_value()?;
        expect_key(&mut map, END_FIELD)?;
        let end: usize = map.next_value()?;
        expect_key(&mut map, VALUE_FIELD)?;
        let value: T = map.next_value()?;
        Ok(Written {
            value,
            span: Some(start..end),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Written<T>, A::Error> {
        Self::unplaced(SeqAccessDeserializer::new(seq))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Written<T>, E> {
        Self::unplaced(v.to_string().into_deserializer())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Written<T>, E> {
        Self::unplaced(v.into_deserializer())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Written<T>, E> {
        Self::unplaced(v.into_deserializer())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Written<T>, E> {
        Self::unplaced(v.into_deserializer())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Written<T>, E> {
        Self::unplaced(v.into_deserializer())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Written<T>, E> {
        Self::unplaced(v.into_deserializer())
    }
}

/// The first key of a map read for a [`Written`]: the span's start, or a
/// key of the struct (any key, when `T` is no struct).
struct FirstKey(Option<&'static [&'static str]>);

impl<'de> de::DeserializeSeed<'de> for FirstKey {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        let key = String::deserialize(d)?;
        match self.0 {
            Some(fields)
                if key != serde_spanned::__unstable::START_FIELD
                    && !fields.contains(&key.as_str()) =>
            {
                Err(de::Error::unknown_field(&key, fields))
            }
            _ => Ok(key),
        }
    }
}

/// The fields of `T` when it deserializes as a struct (every struct of the
/// schema denies unknown fields): asked of a deserializer that only listens.
fn struct_fields<'de, T: Deserialize<'de>>() -> Option<&'static [&'static str]> {
    use std::cell::Cell;
    struct Probe<'a>(&'a Cell<Option<&'static [&'static str]>>);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.set(Some(fields));
            Err(de::Error::custom("only listening"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }
    let found = Cell::new(None);
    let _ = T::deserialize(Probe(&found));
    found.get()
}

fn expect_key<'de, A: MapAccess<'de>>(map: &mut A, field: &'static str) -> Result<(), A::Error> {
    match map.next_key::<String>()? {
        Some(k) if k == field => Ok(()),
        _ => Err(de::Error::missing_field(field)),
    }
}

/// A map whose first key was already read.
struct Replay<A> {
    first: Option<String>,
    map: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Replay<A> {
    type Error = A::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        match self.first.take() {
            Some(k) => seed.deserialize(k.into_deserializer()).map(Some),
            None => self.map.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

impl<T: fmt::Debug> fmt::Debug for Written<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<T> Deref for Written<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Display> fmt::Display for Written<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<T: PartialEq> PartialEq for Written<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: PartialEq> PartialEq<T> for Written<T> {
    fn eq(&self, other: &T) -> bool {
        self.value == *other
    }
}

impl PartialEq<&str> for Written<String> {
    fn eq(&self, other: &&str) -> bool {
        self.value == *other
    }
}

impl<T: Eq> Eq for Written<T> {}

impl<T: Ord> PartialOrd for Written<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> Ord for Written<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl std::borrow::Borrow<str> for Written<String> {
    fn borrow(&self) -> &str {
        &self.value
    }
}
