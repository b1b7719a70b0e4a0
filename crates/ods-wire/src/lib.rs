//! The Avro wire format of `ods`.
//!
//! Every message on a topic is framed in the Confluent wire format: `0x00`, the schema id as a
//! big-endian `u32`, then the Avro binary datum ([`frame`], [`unframe`]). The ids and schema files
//! come from `schemas/catalog.json` in the repository, compiled in ([`SchemaCatalog::bundled`]),
//! so a Confluent-compatible schema registry can be plugged in later without changing a byte.
//!
//! [`encode_event`] / [`decode_event`] translate the domain [`ods_model::Event`]s; the processor
//! outputs ([`records::NotificationValidated`], [`records::NotificationRejected`],
//! [`records::DeadLetter`]) are plain records encoded with [`encode_record`] and decoded with
//! [`decode_record`]. Decoding never panics on arbitrary bytes; it returns a [`WireError`].

mod avro_enum;
mod catalog;
mod codec;
mod error;
pub mod records;

pub use catalog::{SchemaCatalog, SchemaEntry, SchemaId};
pub use codec::{
    decode_event, decode_record, encode_event, encode_record, frame, unframe, WireRecord,
};
pub use error::WireError;
