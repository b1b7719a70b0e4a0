use std::collections::BTreeMap;
use std::sync::OnceLock;

use apache_avro::Schema;
use serde::Deserialize;

use crate::error::WireError;

/// A schema id of the Confluent wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaId(pub u32);

impl SchemaId {
    /// `nl.ods.v1.NotificationFiled`.
    pub const NOTIFICATION_FILED: SchemaId = SchemaId(1);
    /// `nl.ods.v1.NotificationAmended`.
    pub const NOTIFICATION_AMENDED: SchemaId = SchemaId(2);
    /// `nl.ods.v1.NotificationWithdrawn`.
    pub const NOTIFICATION_WITHDRAWN: SchemaId = SchemaId(3);
    /// `nl.ods.v1.ZeroReport`.
    pub const ZERO_REPORT: SchemaId = SchemaId(4);
    /// `nl.ods.v1.NotificationValidated`.
    pub const NOTIFICATION_VALIDATED: SchemaId = SchemaId(5);
    /// `nl.ods.v1.NotificationRejected`.
    pub const NOTIFICATION_REJECTED: SchemaId = SchemaId(6);
    /// `nl.ods.v1.DeadLetter`.
    pub const DEAD_LETTER: SchemaId = SchemaId(7);
}

/// One schema of the catalog.
#[derive(Debug, Clone)]
pub struct SchemaEntry {
    /// The id.
    pub id: SchemaId,
    /// Full record name, e.g. `nl.ods.v1.NotificationFiled`.
    pub record: String,
    /// Version of the record's schema.
    pub version: u32,
    /// The schema file name in `schemas/`.
    pub file: String,
    /// The topic the record is written to.
    pub topic: String,
    /// The schema text.
    pub text: &'static str,
    /// The parsed schema.
    pub schema: Schema,
}

/// All schemas by id.
#[derive(Debug, Clone)]
pub struct SchemaCatalog {
    entries: BTreeMap<SchemaId, SchemaEntry>,
}

#[derive(Deserialize)]
struct CatalogFile {
    schemas: Vec<CatalogRow>,
}

#[derive(Deserialize)]
struct CatalogRow {
    id: u32,
    record: String,
    version: u32,
    file: String,
    topic: String,
}

const CATALOG: &str = include_str!("../../../schemas/catalog.json");
const FILES: [(&str, &str); 7] = [
    (
        "notification_filed.v1.avsc",
        include_str!("../../../schemas/notification_filed.v1.avsc"),
    ),
    (
        "notification_amended.v1.avsc",
        include_str!("../../../schemas/notification_amended.v1.avsc"),
    ),
    (
        "notification_withdrawn.v1.avsc",
        include_str!("../../../schemas/notification_withdrawn.v1.avsc"),
    ),
    (
        "zero_report.v1.avsc",
        include_str!("../../../schemas/zero_report.v1.avsc"),
    ),
    (
        "notification_validated.v1.avsc",
        include_str!("../../../schemas/notification_validated.v1.avsc"),
    ),
    (
        "notification_rejected.v1.avsc",
        include_str!("../../../schemas/notification_rejected.v1.avsc"),
    ),
    (
        "dead_letter.v1.avsc",
        include_str!("../../../schemas/dead_letter.v1.avsc"),
    ),
];

impl SchemaCatalog {
    /// The catalog compiled into the binary, parsed once per process.
    pub fn bundled() -> Result<&'static SchemaCatalog, WireError> {
        static CATALOG_CELL: OnceLock<Result<SchemaCatalog, WireError>> = OnceLock::new();
        CATALOG_CELL
            .get_or_init(Self::parse_bundled)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn parse_bundled() -> Result<SchemaCatalog, WireError> {
        let file: CatalogFile =
            serde_json::from_str(CATALOG).map_err(|e| WireError::Catalog(e.to_string()))?;
        let mut entries = BTreeMap::new();
        for row in file.schemas {
            let text = FILES
                .iter()
                .find(|(name, _)| *name == row.file)
                .map(|(_, text)| *text)
                .ok_or_else(|| WireError::Catalog(format!("no bundled file {}", row.file)))?;
            let schema = Schema::parse_str(text)
                .map_err(|e| WireError::Catalog(format!("{}: {e}", row.file)))?;
            let name = match &schema {
                Schema::Record(r) => r.name.fullname(None),
                _ => return Err(WireError::Catalog(format!("{} is not a record", row.file))),
            };
            if name != row.record {
                return Err(WireError::Catalog(format!(
                    "{} defines {name}, catalog says {}",
                    row.file, row.record
                )));
            }
            let id = SchemaId(row.id);
            let entry = SchemaEntry {
                id,
                record: row.record,
                version: row.version,
                file: row.file,
                topic: row.topic,
                text,
                schema,
            };
            if entries.insert(id, entry).is_some() {
                return Err(WireError::Catalog(format!("id {} used twice", row.id)));
            }
        }
        Ok(SchemaCatalog { entries })
    }

    /// The schema with this id.
    pub fn get(&self, id: SchemaId) -> Result<&SchemaEntry, WireError> {
        self.entries.get(&id).ok_or(WireError::UnknownSchema(id.0))
    }

    /// All schemas in id order.
    pub fn iter(&self) -> impl Iterator<Item = &SchemaEntry> {
        self.entries.values()
    }
}
