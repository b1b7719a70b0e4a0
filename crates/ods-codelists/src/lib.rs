//! Code lists and reference data of `ods`.
//!
//! The lists are versioned CSV files in `data/codelists/` (and `data/reference/`) of the
//! repository, each starting with `# source:`, `# version:` and `# notes:` comment lines. A copy
//! of every file is compiled into the binary ([`CodeLists::bundled`]), so `ods` runs from anywhere;
//! a directory with newer files can replace them ([`CodeLists::load_dir`]). Any malformed file
//! stops start-up with an error naming file, line and reason ([`CodeListError`]).
//!
//! Each code carries a validity interval, so a notification is checked against the list **in
//! force on its diagnosis date** (NCvB acceptance rule 2).

mod error;
mod lists;
mod parse;
pub mod reference;
mod search;

pub use error::CodeListError;
pub use lists::{
    CodeList, CodeLists, Coded, Diagnosis, DiagnosisGroup, DiagnosisKind, Exposure, ExposureGroup,
    Guideline, Occupation, OccupationLevel, Sector, SectorLevel, Service, ServiceKind, Validity,
};
pub use search::SearchHit;
