//! String-valued Avro enum fields that the schema-aware serializer can write.
//!
//! apache-avro's schema-aware serializer (`write_avro_datum_ref`) accepts only serde unit variants
//! for an Avro `enum` and writes the variant index it is handed, ignoring the name. [`AvroEnum`]
//! keeps the symbol as a string (convenient, and deserialized exactly like a `String`) and
//! serializes it as `serialize_unit_variant(name, index of the symbol in the schema, symbol)`.
//! A string that is not one of the symbols is a serialization error.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::ops::Deref;

use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The symbols of one Avro enum of `schemas/*.avsc`, in schema order.
///
/// A test checks every list against the bundled schemas, so they cannot drift apart.
pub trait Symbols {
    /// The enum's (unqualified) Avro name.
    const NAME: &'static str;
    /// The enum's symbols, in the order of the schema (the index is what goes on the wire).
    const SYMBOLS: &'static [&'static str];

    /// The index of `symbol` in [`Self::SYMBOLS`].
    fn index_of(symbol: &str) -> Option<(u32, &'static str)> {
        Self::SYMBOLS
            .iter()
            .position(|s| *s == symbol)
            .and_then(|i| Some((u32::try_from(i).ok()?, *Self::SYMBOLS.get(i)?)))
    }
}

macro_rules! symbols {
    ($(#[$doc:meta] $marker:ident = $name:literal [$($symbol:literal),+ $(,)?];)+) => {
        $(
            #[$doc]
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
            pub enum $marker {}

            impl Symbols for $marker {
                const NAME: &'static str = $name;
                const SYMBOLS: &'static [&'static str] = &[$($symbol),+];
            }
        )+

        /// Every [`Symbols`] list, as `(name, symbols)`.
        #[cfg(test)]
        pub(crate) const ALL_SYMBOLS: &[(&str, &[&str])] =
            &[$(($marker::NAME, $marker::SYMBOLS)),+];
    };
}

symbols! {
    /// Symbols of the Avro enum `Sex`.
    SexSymbols = "Sex" ["M", "F", "X"];
    /// Symbols of the Avro enum `Consequence`.
    ConsequenceSymbols = "Consequence" ["none", "temporary", "permanent", "death"];
    /// Symbols of the Avro enum `AbsenceBand`.
    AbsenceBandSymbols = "AbsenceBand" ["lt1m", "m1to3", "m3to6", "gt6m", "unknown"];
    /// Symbols of the Avro enum `DetectionRoute`.
    DetectionRouteSymbols = "DetectionRoute" ["absence_guidance", "consultation", "pmo_pago"];
    /// Symbols of the Avro enum `PreventionAdvice`.
    PreventionAdviceSymbols = "PreventionAdvice" [
        "treatment",
        "organisational",
        "behavioural",
        "further_medical",
        "workplace_survey",
        "ppe",
        "technical",
    ];
    /// Symbols of the Avro enum `WithdrawalReason`.
    WithdrawalReasonSymbols = "WithdrawalReason" [
        "duplicate",
        "not_occupational",
        "entered_in_error",
        "other",
    ];
}

/// A symbol of the Avro enum `S`, held as a string.
///
/// Derefs to `str`; built with `From<String>` / `From<&str>`. Deserializes like a `String`
/// (unchecked, as before); serializing a string that is not one of `S::SYMBOLS` is an error.
pub struct AvroEnum<S> {
    symbol: String,
    marker: PhantomData<fn() -> S>,
}

impl<S> AvroEnum<S> {
    /// Wraps a symbol (not checked here; checked when serialized).
    pub fn new(symbol: impl Into<String>) -> Self {
        AvroEnum {
            symbol: symbol.into(),
            marker: PhantomData,
        }
    }

    /// The symbol.
    pub fn as_str(&self) -> &str {
        &self.symbol
    }

    /// The symbol, unwrapped.
    pub fn into_string(self) -> String {
        self.symbol
    }
}

impl<S> Clone for AvroEnum<S> {
    fn clone(&self) -> Self {
        AvroEnum::new(self.symbol.clone())
    }
}

impl<S> fmt::Debug for AvroEnum<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.symbol, f)
    }
}

impl<S> fmt::Display for AvroEnum<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.symbol)
    }
}

impl<S> PartialEq for AvroEnum<S> {
    fn eq(&self, other: &Self) -> bool {
        self.symbol == other.symbol
    }
}

impl<S> Eq for AvroEnum<S> {}

impl<S> Hash for AvroEnum<S> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.symbol.hash(state);
    }
}

impl<S> PartialEq<str> for AvroEnum<S> {
    fn eq(&self, other: &str) -> bool {
        self.symbol == other
    }
}

impl<S> PartialEq<&str> for AvroEnum<S> {
    fn eq(&self, other: &&str) -> bool {
        self.symbol == *other
    }
}

impl<S> Deref for AvroEnum<S> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.symbol
    }
}

impl<S> AsRef<str> for AvroEnum<S> {
    fn as_ref(&self) -> &str {
        &self.symbol
    }
}

impl<S> From<String> for AvroEnum<S> {
    fn from(symbol: String) -> Self {
        AvroEnum::new(symbol)
    }
}

impl<S> From<&str> for AvroEnum<S> {
    fn from(symbol: &str) -> Self {
        AvroEnum::new(symbol)
    }
}

impl<S> From<AvroEnum<S>> for String {
    fn from(value: AvroEnum<S>) -> Self {
        value.symbol
    }
}

impl<S: Symbols> Serialize for AvroEnum<S> {
    fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        let (index, symbol) = S::index_of(&self.symbol).ok_or_else(|| {
            Ser::Error::custom(format!(
                "{:?} is not a symbol of the Avro enum {} ({})",
                self.symbol,
                S::NAME,
                S::SYMBOLS.join(", ")
            ))
        })?;
        serializer.serialize_unit_variant(S::NAME, index, symbol)
    }
}

impl<'de, S> Deserialize<'de> for AvroEnum<S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(AvroEnum::new)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use apache_avro::Schema;

    use super::*;
    use crate::catalog::SchemaCatalog;

    /// Collects every enum (unqualified name → symbols) in `schema`.
    fn enums(schema: &Schema, out: &mut Vec<(String, Vec<String>)>) {
        match schema {
            Schema::Enum(e) => out.push((e.name.name.clone(), e.symbols.clone())),
            Schema::Record(r) => r.fields.iter().for_each(|f| enums(&f.schema, out)),
            Schema::Array(a) => enums(&a.items, out),
            Schema::Map(m) => enums(&m.types, out),
            Schema::Union(u) => u.variants().iter().for_each(|v| enums(v, out)),
            _ => {}
        }
    }

    #[test]
    fn symbol_lists_equal_the_bundled_schemas() {
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for entry in SchemaCatalog::bundled().unwrap().iter() {
            let mut all = Vec::new();
            enums(&entry.schema, &mut all);
            for (name, symbols) in all {
                let previous = found.insert(name.clone(), symbols.clone());
                if let Some(previous) = previous {
                    assert_eq!(
                        previous, symbols,
                        "enum {name} differs between schemas ({})",
                        entry.file
                    );
                }
            }
        }
        assert!(!found.is_empty());
        for (name, symbols) in ALL_SYMBOLS {
            let in_schema = found
                .get(*name)
                .unwrap_or_else(|| panic!("no enum {name} in the bundled schemas"));
            assert_eq!(in_schema, symbols, "symbols of {name}");
        }
        for name in found.keys() {
            assert!(
                ALL_SYMBOLS.iter().any(|(n, _)| n == name),
                "the schemas' enum {name} has no Symbols list"
            );
        }
    }

    #[test]
    fn unknown_symbols_are_errors_and_known_ones_keep_their_index() {
        let value = apache_avro::to_value(AvroEnum::<SexSymbols>::new("Q"));
        assert!(value.is_err());
        assert_eq!(SexSymbols::index_of("X"), Some((2, "X")));
        assert_eq!(AbsenceBandSymbols::index_of("1to3m"), None);
        let e: AvroEnum<SexSymbols> = "F".into();
        assert_eq!(e, "F");
        assert_eq!(e.as_str(), "F");
        assert_eq!(format!("{e:?}"), "\"F\"");
    }
}
