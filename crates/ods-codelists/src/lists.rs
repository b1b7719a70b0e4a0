//! The code lists and their entries.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use chrono::NaiveDate;
use serde::Serialize;

use crate::error::CodeListError;
use crate::parse::{read_rows, FileMeta, Row};
use crate::search::{search_entries, SearchHit};

/// The interval in which a code may be used; `to` is the last valid day (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Validity {
    /// First valid day.
    pub from: NaiveDate,
    /// Last valid day, `None` while still in force.
    pub to: Option<NaiveDate>,
}

impl Validity {
    /// Whether the code is in force on `date`.
    pub fn contains(&self, date: NaiveDate) -> bool {
        date >= self.from && self.to.is_none_or(|to| date <= to)
    }

    fn read(row: &Row<'_>) -> Result<Self, CodeListError> {
        let from = row.date("valid_from")?;
        let to = row.optional_date("valid_to")?;
        if let Some(to) = to {
            if to < from {
                return Err(row.err(format!("valid_to {to} is before valid_from {from}")));
            }
        }
        Ok(Validity { from, to })
    }
}

/// An entry of a code list.
pub trait Coded {
    /// The code.
    fn code(&self) -> &str;
    /// Validity interval.
    fn validity(&self) -> Validity;
    /// Words a user may search for: names in English and Dutch and synonyms.
    fn search_terms(&self) -> Vec<&str>;
}

macro_rules! closed_set {
    ($(#[$meta:meta])* $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $code:literal ),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $( $(#[$vmeta])* $variant ),+ }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[ $( $name::$variant ),+ ];

            /// The stable code.
            pub fn code(self) -> &'static str {
                match self { $( $name::$variant => $code ),+ }
            }

            /// Parses the stable code.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $( $code => Some($name::$variant), )+ _ => None }
            }

            fn read(row: &Row<'_>, column: &str) -> Result<Self, CodeListError> {
                let text = row.required(column)?;
                Self::parse(text).ok_or_else(|| {
                    let allowed: Vec<&str> = Self::ALL.iter().map(|v| v.code()).collect();
                    row.err(format!("column '{column}': '{text}' is not one of {}", allowed.join(", ")))
                })
            }
        }
    };
}

closed_set!(
    /// The diagnosis groups of the registry's yearly statistics.
    DiagnosisGroup {
        /// Psychological disorders (burnout, PTSD, ...).
        Psychological => "psychological",
        /// Musculoskeletal disorders.
        Musculoskeletal => "musculoskeletal",
        /// Hearing loss and tinnitus.
        Hearing => "hearing",
        /// Skin diseases.
        Skin => "skin",
        /// Respiratory diseases.
        Respiratory => "respiratory",
        /// Neurological disorders (carpal tunnel most frequent).
        Neurological => "neurological",
        /// Infectious diseases.
        Infectious => "infectious",
        /// Cancer.
        Cancer => "cancer",
        /// Everything else.
        Other => "other",
    }
);

closed_set!(
    /// What kind of code a CAS code is, for the acceptance rules.
    DiagnosisKind {
        /// A disease that may be notified.
        Disease => "disease",
        /// A complaint (symptom) code: first digit after the letter is 1. Rejected unless on
        /// the exception list of the validation rules.
        Complaint => "complaint",
        /// Acute injury from an accident: not an occupational disease.
        Accident => "accident",
    }
);

closed_set!(
    /// Exposure groups of the NCvB exposure list.
    ExposureGroup {
        /// Physical agents (noise, vibration, radiation, climate).
        Physical => "physical",
        /// Chemical agents (dusts, fumes, solvents, ...).
        Chemical => "chemical",
        /// Biological agents (viruses, bacteria, animals).
        Biological => "biological",
        /// Psychosocial load (workload, trauma, conflicts).
        Psychosocial => "psychosocial",
        /// Ergonomic and biomechanical load.
        Ergonomic => "ergonomic",
    }
);

closed_set!(
    /// Level of a sector in the SBI-2008 hierarchy.
    SectorLevel {
        /// SBI section, a letter A..U.
        Section => "section",
        /// Two-digit division.
        Division => "division",
        /// Three-digit group.
        Group => "group",
        /// Four-digit class.
        Class => "class",
        /// Five-digit subclass.
        Subclass => "subclass",
    }
);

closed_set!(
    /// Level in the ISCO-08 hierarchy.
    OccupationLevel {
        /// One digit.
        Major => "major",
        /// Two digits.
        SubMajor => "sub_major",
        /// Three digits.
        Minor => "minor",
        /// Four digits.
        Unit => "unit",
    }
);

closed_set!(
    /// Kind of occupational health service.
    ServiceKind {
        /// A certified occupational health service (gecertificeerde arbodienst).
        CertifiedService => "certified_service",
        /// An employer's internal service.
        InternalService => "internal_service",
        /// A network or custom arrangement (netwerk-/maatwerkregeling).
        Network => "network",
    }
);

/// A CAS diagnosis code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    /// CAS code: a letter and three digits.
    pub code: String,
    /// ICD-10 code it maps to.
    pub icd10: String,
    /// Diagnosis group.
    pub group: DiagnosisGroup,
    /// Disease, complaint or accident.
    pub kind: DiagnosisKind,
    /// English name.
    pub name_en: String,
    /// Dutch name.
    pub name_nl: String,
    /// Validity.
    pub validity: Validity,
    /// Extra search terms.
    pub synonyms: Vec<String>,
}

/// An exposure (causal agent or load).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exposure {
    /// Code: group prefix (PH, CH, BI, PS, ER) and three digits.
    pub code: String,
    /// Exposure group.
    pub group: ExposureGroup,
    /// English name.
    pub name_en: String,
    /// Dutch name.
    pub name_nl: String,
    /// Validity.
    pub validity: Validity,
    /// Extra search terms.
    pub synonyms: Vec<String>,
}

/// A sector: an SBI section or a finer SBI-2008 code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sector {
    /// Section letter or SBI code without dots.
    pub code: String,
    /// The next coarser sector in the list.
    pub parent: Option<String>,
    /// SBI section letter.
    pub sbi_section: String,
    /// Level in the hierarchy.
    pub level: SectorLevel,
    /// English name.
    pub name_en: String,
    /// Dutch name.
    pub name_nl: String,
    /// Validity.
    pub validity: Validity,
    /// Extra search terms.
    pub synonyms: Vec<String>,
}

/// An ISCO-08 occupation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Occupation {
    /// ISCO-08 code, 1 to 4 digits.
    pub code: String,
    /// Level.
    pub level: OccupationLevel,
    /// English name.
    pub name_en: String,
    /// Dutch name.
    pub name_nl: String,
    /// Validity.
    pub validity: Validity,
    /// Extra search terms.
    pub synonyms: Vec<String>,
}

/// An occupational health service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    /// Service id.
    pub service_id: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ServiceKind,
    /// Province.
    pub region: String,
    /// Validity.
    pub validity: Validity,
}

/// An NCvB registration guideline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Guideline {
    /// Code, e.g. `B001`.
    pub code: String,
    /// English name.
    pub name_en: String,
    /// Dutch name.
    pub name_nl: String,
    /// CAS codes the guideline covers.
    pub diagnosis_codes: Vec<String>,
    /// Validity.
    pub validity: Validity,
}

macro_rules! coded {
    ($ty:ty, $code:ident, [$($term:ident),*] $(, $syn:ident)?) => {
        impl Coded for $ty {
            fn code(&self) -> &str { &self.$code }
            fn validity(&self) -> Validity { self.validity }
            #[allow(unused_mut)]
            fn search_terms(&self) -> Vec<&str> {
                let mut terms = vec![$(self.$term.as_str()),*];
                $( terms.extend(self.$syn.iter().map(String::as_str)); )?
                terms
            }
        }
    };
}
coded!(Diagnosis, code, [name_en, name_nl, icd10], synonyms);
coded!(Exposure, code, [name_en, name_nl], synonyms);
coded!(Sector, code, [name_en, name_nl], synonyms);
coded!(Occupation, code, [name_en, name_nl], synonyms);
coded!(Service, service_id, [name, region]);
coded!(Guideline, code, [name_en, name_nl]);

/// One code list: entries by code, with the file's source and version.
#[derive(Debug, Clone)]
pub struct CodeList<T> {
    entries: BTreeMap<String, T>,
    /// Where the codes come from (`# source:`).
    pub source: String,
    /// The list's version (`# version:`).
    pub version: String,
}

impl<T: Coded> CodeList<T> {
    fn build(file: &str, meta: FileMeta, rows: Vec<(u64, T)>) -> Result<Self, CodeListError> {
        let mut entries = BTreeMap::new();
        for (line, entry) in rows {
            let code = entry.code().to_string();
            if entries.insert(code.clone(), entry).is_some() {
                return Err(CodeListError::new(
                    file,
                    line,
                    format!("code '{code}' appears twice"),
                ));
            }
        }
        Ok(CodeList {
            entries,
            source: meta.source,
            version: meta.version,
        })
    }

    /// The entry with this code, whatever its validity.
    pub fn get(&self, code: &str) -> Option<&T> {
        self.entries.get(code)
    }

    /// The entry with this code if it is in force on `date`.
    pub fn in_force(&self, code: &str, date: NaiveDate) -> Option<&T> {
        self.get(code).filter(|e| e.validity().contains(date))
    }

    /// All entries in code order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.values()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Prefix and word search over codes and names in both languages (see [`SearchHit`]).
    /// With `on`, only codes in force on that date.
    pub fn search(
        &self,
        query: &str,
        on: Option<NaiveDate>,
        limit: usize,
    ) -> Vec<SearchHit<'_, T>> {
        search_entries(
            self.entries
                .values()
                .filter(|e| on.is_none_or(|d| e.validity().contains(d))),
            query,
            limit,
        )
    }
}

/// All code lists, loaded and cross-checked.
#[derive(Debug, Clone)]
pub struct CodeLists {
    /// CAS diagnoses.
    pub diagnoses: CodeList<Diagnosis>,
    /// Exposures.
    pub exposures: CodeList<Exposure>,
    /// Sectors.
    pub sectors: CodeList<Sector>,
    /// ISCO-08 occupations.
    pub occupations: CodeList<Occupation>,
    /// Occupational health services.
    pub services: CodeList<Service>,
    /// Registration guidelines.
    pub guidelines: CodeList<Guideline>,
}

/// The file names of the code lists, in load order.
pub const FILES: [&str; 6] = [
    "diagnoses.csv",
    "exposures.csv",
    "sectors.csv",
    "occupations.csv",
    "services.csv",
    "guidelines.csv",
];

const BUNDLED: [&str; 6] = [
    include_str!("../../../data/codelists/diagnoses.csv"),
    include_str!("../../../data/codelists/exposures.csv"),
    include_str!("../../../data/codelists/sectors.csv"),
    include_str!("../../../data/codelists/occupations.csv"),
    include_str!("../../../data/codelists/services.csv"),
    include_str!("../../../data/codelists/guidelines.csv"),
];

fn is_letter_digits(code: &str, letters: usize, digits: usize) -> bool {
    code.len() == letters + digits
        && code[..letters].bytes().all(|b| b.is_ascii_uppercase())
        && code[letters..].bytes().all(|b| b.is_ascii_digit())
}

impl CodeLists {
    /// The lists compiled into this binary (the repository's `data/codelists`).
    pub fn bundled() -> Result<Self, CodeListError> {
        Self::from_texts(|i| Ok(BUNDLED[i].to_string()), "")
    }

    /// Loads the six files from `dir` (file names as in the repository).
    pub fn load_dir(dir: &Path) -> Result<Self, CodeListError> {
        let prefix = format!("{}/", dir.display());
        Self::from_texts(
            |i| {
                let path = dir.join(FILES[i]);
                std::fs::read_to_string(&path).map_err(|e| {
                    CodeListError::new(&path.display().to_string(), 0, format!("cannot read: {e}"))
                })
            },
            &prefix,
        )
    }

    fn from_texts(
        text_of: impl Fn(usize) -> Result<String, CodeListError>,
        prefix: &str,
    ) -> Result<Self, CodeListError> {
        let name = |i: usize| format!("{prefix}{}", FILES[i]);
        let diagnoses = parse_diagnoses(&name(0), &text_of(0)?)?;
        let exposures = parse_exposures(&name(1), &text_of(1)?)?;
        let sectors = parse_sectors(&name(2), &text_of(2)?)?;
        let occupations = parse_occupations(&name(3), &text_of(3)?)?;
        let services = parse_services(&name(4), &text_of(4)?)?;
        let guidelines = parse_guidelines(&name(5), &text_of(5)?, &diagnoses)?;
        Ok(CodeLists {
            diagnoses,
            exposures,
            sectors,
            occupations,
            services,
            guidelines,
        })
    }

    /// The SBI section of a sector code, if the sector exists.
    pub fn sbi_section(&self, sector_code: &str) -> Option<&str> {
        self.sectors
            .get(sector_code)
            .map(|s| s.sbi_section.as_str())
    }

    /// `(file, version)` of every list, for `/readyz` and provenance in exports.
    pub fn versions(&self) -> Vec<(&'static str, &str)> {
        vec![
            (FILES[0], self.diagnoses.version.as_str()),
            (FILES[1], self.exposures.version.as_str()),
            (FILES[2], self.sectors.version.as_str()),
            (FILES[3], self.occupations.version.as_str()),
            (FILES[4], self.services.version.as_str()),
            (FILES[5], self.guidelines.version.as_str()),
        ]
    }
}

fn with_lines<T>(
    file: &str,
    text: &str,
    header: &[&str],
    parse: impl Fn(&Row<'_>) -> Result<T, CodeListError>,
) -> Result<(FileMeta, Vec<(u64, T)>), CodeListError> {
    read_rows(file, text, header, true, |row| Ok((row.line, parse(row)?)))
}

fn parse_diagnoses(file: &str, text: &str) -> Result<CodeList<Diagnosis>, CodeListError> {
    let header = [
        "code",
        "icd10",
        "group",
        "kind",
        "name_en",
        "name_nl",
        "valid_from",
        "valid_to",
        "synonyms",
    ];
    let (meta, rows) = with_lines(file, text, &header, |row| {
        let code = row.required("code")?.to_string();
        if !is_letter_digits(&code, 1, 3) {
            return Err(row.err(format!(
                "code '{code}' is not a CAS code (one uppercase letter and three digits)"
            )));
        }
        let kind = DiagnosisKind::read(row, "kind")?;
        let is_complaint_code = code.as_bytes()[1] == b'1';
        if is_complaint_code != (kind == DiagnosisKind::Complaint) {
            return Err(row.err(format!(
                "code '{code}': kind must be 'complaint' exactly when the first digit is 1"
            )));
        }
        Ok(Diagnosis {
            icd10: row.required("icd10")?.to_string(),
            group: DiagnosisGroup::read(row, "group")?,
            kind,
            name_en: row.required("name_en")?.to_string(),
            name_nl: row.required("name_nl")?.to_string(),
            validity: Validity::read(row)?,
            synonyms: row.list("synonyms", ';'),
            code,
        })
    })?;
    CodeList::build(file, meta, rows)
}

fn parse_exposures(file: &str, text: &str) -> Result<CodeList<Exposure>, CodeListError> {
    let header = [
        "code",
        "group",
        "name_en",
        "name_nl",
        "valid_from",
        "valid_to",
        "synonyms",
    ];
    let (meta, rows) = with_lines(file, text, &header, |row| {
        let code = row.required("code")?.to_string();
        let group = ExposureGroup::read(row, "group")?;
        let prefix = match group {
            ExposureGroup::Physical => "PH",
            ExposureGroup::Chemical => "CH",
            ExposureGroup::Biological => "BI",
            ExposureGroup::Psychosocial => "PS",
            ExposureGroup::Ergonomic => "ER",
        };
        if !is_letter_digits(&code, 2, 3) || !code.starts_with(prefix) {
            return Err(row.err(format!(
                "code '{code}' must be '{prefix}' and three digits for group '{}'",
                group.code()
            )));
        }
        Ok(Exposure {
            group,
            name_en: row.required("name_en")?.to_string(),
            name_nl: row.required("name_nl")?.to_string(),
            validity: Validity::read(row)?,
            synonyms: row.list("synonyms", ';'),
            code,
        })
    })?;
    CodeList::build(file, meta, rows)
}

fn parse_sectors(file: &str, text: &str) -> Result<CodeList<Sector>, CodeListError> {
    let header = [
        "code",
        "parent",
        "sbi_section",
        "level",
        "name_en",
        "name_nl",
        "valid_from",
        "valid_to",
        "synonyms",
    ];
    let (meta, rows) = with_lines(file, text, &header, |row| {
        let code = row.required("code")?.to_string();
        let level = SectorLevel::read(row, "level")?;
        let sbi_section = row.required("sbi_section")?.to_string();
        if !is_letter_digits(&sbi_section, 1, 0) || sbi_section.as_str() > "U" {
            return Err(row.err(format!(
                "sbi_section '{sbi_section}' is not an SBI section letter A..U"
            )));
        }
        let expected_digits = match level {
            SectorLevel::Section => 0,
            SectorLevel::Division => 2,
            SectorLevel::Group => 3,
            SectorLevel::Class => 4,
            SectorLevel::Subclass => 5,
        };
        let well_formed = if level == SectorLevel::Section {
            code == sbi_section
        } else {
            is_letter_digits(&code, 0, expected_digits)
        };
        if !well_formed {
            return Err(row.err(format!(
                "code '{code}' does not fit level '{}' (section: the letter; otherwise {expected_digits} digits)",
                level.code()
            )));
        }
        Ok(Sector {
            parent: row.optional("parent").map(str::to_string),
            sbi_section,
            level,
            name_en: row.required("name_en")?.to_string(),
            name_nl: row.required("name_nl")?.to_string(),
            validity: Validity::read(row)?,
            synonyms: row.list("synonyms", ';'),
            code,
        })
    })?;
    let mut parents = Vec::new();
    for (line, sector) in &rows {
        parents.push((
            *line,
            sector.code.clone(),
            sector.parent.clone(),
            sector.sbi_section.clone(),
        ));
    }
    let list = CodeList::build(file, meta, rows)?;
    for (line, code, parent, section) in parents {
        match parent {
            None if code != section => {
                return Err(CodeListError::new(file, line, format!("sector '{code}' needs a parent")))
            }
            Some(parent) => match list.get(&parent) {
                None => {
                    return Err(CodeListError::new(
                        file,
                        line,
                        format!("parent '{parent}' of sector '{code}' is not in the list"),
                    ))
                }
                Some(p) if p.sbi_section != section => {
                    return Err(CodeListError::new(
                        file,
                        line,
                        format!("sector '{code}' is in section {section} but its parent '{parent}' is in {}", p.sbi_section),
                    ))
                }
                Some(_) => {}
            },
            None => {}
        }
    }
    Ok(list)
}

fn parse_occupations(file: &str, text: &str) -> Result<CodeList<Occupation>, CodeListError> {
    let header = [
        "code",
        "level",
        "name_en",
        "name_nl",
        "valid_from",
        "valid_to",
        "synonyms",
    ];
    let (meta, rows) = with_lines(file, text, &header, |row| {
        let code = row.required("code")?.to_string();
        let level = OccupationLevel::read(row, "level")?;
        let digits = match level {
            OccupationLevel::Major => 1,
            OccupationLevel::SubMajor => 2,
            OccupationLevel::Minor => 3,
            OccupationLevel::Unit => 4,
        };
        if !is_letter_digits(&code, 0, digits) {
            return Err(row.err(format!(
                "ISCO-08 code '{code}' must have {digits} digits at level '{}'",
                level.code()
            )));
        }
        Ok(Occupation {
            level,
            name_en: row.required("name_en")?.to_string(),
            name_nl: row.required("name_nl")?.to_string(),
            validity: Validity::read(row)?,
            synonyms: row.list("synonyms", ';'),
            code,
        })
    })?;
    CodeList::build(file, meta, rows)
}

fn parse_services(file: &str, text: &str) -> Result<CodeList<Service>, CodeListError> {
    let header = [
        "service_id",
        "name",
        "kind",
        "region",
        "valid_from",
        "valid_to",
    ];
    let (meta, rows) = with_lines(file, text, &header, |row| {
        let service_id = row.required("service_id")?.to_string();
        if service_id.len() > 32
            || !service_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(row.err(format!(
                "service_id '{service_id}' must be at most 32 letters, digits, '-' or '_'"
            )));
        }
        Ok(Service {
            service_id,
            name: row.required("name")?.to_string(),
            kind: ServiceKind::read(row, "kind")?,
            region: row.required("region")?.to_string(),
            validity: Validity::read(row)?,
        })
    })?;
    CodeList::build(file, meta, rows)
}

fn parse_guidelines(
    file: &str,
    text: &str,
    diagnoses: &CodeList<Diagnosis>,
) -> Result<CodeList<Guideline>, CodeListError> {
    let header = [
        "code",
        "name_en",
        "name_nl",
        "diagnosis_codes",
        "valid_from",
        "valid_to",
    ];
    let (meta, rows) = with_lines(file, text, &header, |row| {
        let diagnosis_codes = row.list("diagnosis_codes", ' ');
        if let Some(missing) = diagnosis_codes.iter().find(|c| diagnoses.get(c).is_none()) {
            return Err(row.err(format!(
                "diagnosis code '{missing}' is not in diagnoses.csv"
            )));
        }
        let unique: HashSet<&String> = diagnosis_codes.iter().collect();
        if unique.len() != diagnosis_codes.len() {
            return Err(row.err("a diagnosis code is listed twice"));
        }
        Ok(Guideline {
            code: row.required("code")?.to_string(),
            name_en: row.required("name_en")?.to_string(),
            name_nl: row.required("name_nl")?.to_string(),
            diagnosis_codes,
            validity: Validity::read(row)?,
        })
    })?;
    CodeList::build(file, meta, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = "# source: test\n# version: t1\n";

    #[test]
    fn diagnosis_kind_must_match_the_code() {
        let text = format!("{META}code,icd10,group,kind,name_en,name_nl,valid_from,valid_to,synonyms\nL101,M54.2,musculoskeletal,disease,Neck,Nek,2010-01-01,,\n");
        let err = parse_diagnoses("diagnoses.csv", &text).unwrap_err();
        assert_eq!(err.line, 4);
        assert!(err.reason.contains("complaint"), "{err}");
    }

    #[test]
    fn validity_is_inclusive_and_checked() {
        let text = format!("{META}code,icd10,group,kind,name_en,name_nl,valid_from,valid_to,synonyms\nL694,M77.1,musculoskeletal,disease,Epicondylitis,Epicondylitis,2010-01-01,2016-12-31,tennisarm\n");
        let list = parse_diagnoses("diagnoses.csv", &text).unwrap();
        let day = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(list.in_force("L694", day("2016-12-31")).is_some());
        assert!(list.in_force("L694", day("2017-01-01")).is_none());
        assert!(list.in_force("L694", day("2009-12-31")).is_none());
        let bad = text.replace("2016-12-31", "2009-12-31");
        assert!(parse_diagnoses("d.csv", &bad)
            .unwrap_err()
            .reason
            .contains("before"));
    }

    #[test]
    fn duplicate_codes_are_rejected_with_the_line() {
        let text = format!("{META}code,group,name_en,name_nl,valid_from,valid_to,synonyms\nPH001,physical,Noise,Lawaai,2010-01-01,,\nPH001,physical,Noise,Lawaai,2010-01-01,,\n");
        let err = parse_exposures("exposures.csv", &text).unwrap_err();
        assert_eq!(
            (err.line, err.to_string().starts_with("exposures.csv:5")),
            (5, true)
        );
    }

    #[test]
    fn exposure_codes_carry_their_group() {
        let text = format!("{META}code,group,name_en,name_nl,valid_from,valid_to,synonyms\nCH001,physical,Noise,Lawaai,2010-01-01,,\n");
        assert!(parse_exposures("exposures.csv", &text).is_err());
    }

    #[test]
    fn sector_parents_must_exist_in_the_same_section() {
        let head = "code,parent,sbi_section,level,name_en,name_nl,valid_from,valid_to,synonyms\n";
        let ok = format!("{META}{head}C,,C,section,Manufacturing,Industrie,2008-01-01,,\n10,C,C,division,Food,Voeding,2008-01-01,,\n1071,10,C,class,Bakeries,Bakkerijen,2008-01-01,,bakker\n");
        let list = parse_sectors("sectors.csv", &ok).unwrap();
        assert_eq!(list.get("1071").map(|s| s.sbi_section.as_str()), Some("C"));
        let orphan = ok.replace("1071,10,", "1071,11,");
        assert!(parse_sectors("sectors.csv", &orphan)
            .unwrap_err()
            .reason
            .contains("not in the list"));
        let wrong = format!("{ok}F,,F,section,Construction,Bouw,2008-01-01,,\n41,C,F,division,Buildings,Gebouwen,2008-01-01,,\n");
        assert!(parse_sectors("sectors.csv", &wrong)
            .unwrap_err()
            .reason
            .contains("section F"));
    }

    #[test]
    fn bundled_lists_load_and_are_rich_enough() {
        let lists = CodeLists::bundled().expect("bundled code lists are valid");
        assert!(lists.diagnoses.len() >= 80, "{}", lists.diagnoses.len());
        assert!(lists.exposures.len() >= 50);
        let sections = lists
            .sectors
            .iter()
            .filter(|s| s.level == SectorLevel::Section)
            .count();
        assert_eq!(sections, 21);
        assert!(lists.sectors.len() - sections >= 60);
        let sub_major = lists
            .occupations
            .iter()
            .filter(|o| o.level == OccupationLevel::SubMajor)
            .count();
        assert_eq!(sub_major, 43, "ISCO-08 has 43 sub-major groups");
        for group in DiagnosisGroup::ALL {
            assert!(
                lists.diagnoses.iter().any(|d| d.group == *group),
                "{group:?}"
            );
        }
        for group in ExposureGroup::ALL {
            assert!(
                lists.exposures.iter().any(|e| e.group == *group),
                "{group:?}"
            );
        }
        for code in [
            "H102", "L101", "L102", "L103", "L104", "L105", "L112", "L122", "R102", "R605", "R606",
            "L694",
        ] {
            assert!(lists.diagnoses.get(code).is_some(), "{code} missing");
        }
        assert!(!lists.services.is_empty() && !lists.guidelines.is_empty());
    }

    #[test]
    fn load_dir_reports_the_path_and_line() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in FILES.iter().zip(BUNDLED) {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        assert!(CodeLists::load_dir(dir.path()).is_ok());
        let broken = BUNDLED[1].replacen("PH001,physical", "PH001,fysical", 1);
        std::fs::write(dir.path().join("exposures.csv"), broken).unwrap();
        let err = CodeLists::load_dir(dir.path()).unwrap_err();
        assert!(err.file.ends_with("exposures.csv"), "{err}");
        assert!(err.line > 1 && err.reason.contains("fysical"), "{err}");
    }
}
