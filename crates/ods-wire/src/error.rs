/// A message that cannot be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than the 5-byte frame header.
    #[error("message of {0} bytes is shorter than the 5-byte Confluent header")]
    TooShort(usize),
    /// The first byte is not the Confluent magic byte 0.
    #[error("magic byte is {0}, expected 0 (Confluent wire format)")]
    BadMagic(u8),
    /// The schema id is not in the catalog.
    #[error("schema id {0} is not in the schema catalog")]
    UnknownSchema(u32),
    /// The schema id is known but not the one expected here.
    #[error("schema id {found} ({record}) where {expected} was expected")]
    UnexpectedSchema {
        /// The id found.
        found: u32,
        /// Its record name.
        record: String,
        /// What the caller wanted.
        expected: &'static str,
    },
    /// The Avro datum does not match the schema.
    #[error("avro: {0}")]
    Avro(String),
    /// The datum decodes but a value is outside the domain (e.g. a bad pseudonym).
    #[error("field {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The bundled catalog is inconsistent (a build defect).
    #[error("schema catalog: {0}")]
    Catalog(String),
}
