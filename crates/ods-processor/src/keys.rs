//! The aggregation key of a counted notification version.

use chrono::Datelike;
use ods_codelists::CodeLists;
use ods_model::{AgeBand, Notification, Period};
use serde::{Deserialize, Serialize};

/// One cell of the count aggregate: every dimension analysts group by. Derived dimensions
/// (group, section, year, quarter) are stored with the key so queries need no joins.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CountKey {
    /// Notification month `YYYY-MM` (the registry counts by notification date).
    pub period: String,
    /// Notification year.
    pub year: i32,
    /// Quarter 1..4 of the notification month.
    pub quarter: u32,
    /// Sector code.
    pub sector_code: String,
    /// SBI section of the sector.
    pub sbi_section: String,
    /// CAS diagnosis code.
    pub diagnosis_code: String,
    /// Diagnosis group.
    pub diagnosis_group: String,
    /// Primary exposure code.
    pub primary_exposure: String,
    /// Group of the primary exposure.
    pub primary_exposure_group: String,
    /// `M`, `F`, `X`.
    pub sex: String,
    /// Age band at diagnosis.
    pub age_band: String,
    /// Detection route.
    pub detection_route: String,
    /// Consequence.
    pub consequence: String,
}

/// What one counted notification version contributes to the aggregates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// The count cell (+1).
    pub key: CountKey,
    /// All exposure codes with their group (for "any exposure" counts).
    pub exposures: Vec<(String, String)>,
    /// The reporting doctor's service id, or `self_employed` (reporter activity per service).
    /// Empty in states stored before it was kept.
    #[serde(default)]
    pub service: String,
}

impl Contribution {
    /// The contribution of a notification filed in `period`. `None` when a code is missing from
    /// the lists (validation rules out that case before this is called).
    pub fn of(n: &Notification, period: Period, lists: &CodeLists) -> Option<Contribution> {
        let diagnosis = lists.diagnoses.get(&n.diagnosis_code)?;
        let sector = lists.sectors.get(&n.sector_code)?;
        let primary_code = n.primary_exposure()?;
        let primary = lists.exposures.get(primary_code)?;
        let mut exposures = Vec::with_capacity(n.exposures.len());
        for e in &n.exposures {
            let group = lists.exposures.get(&e.code)?.group.code();
            exposures.push((e.code.clone(), group.to_string()));
        }
        Some(Contribution {
            key: CountKey {
                period: period.to_string(),
                year: period.year(),
                quarter: period.quarter(),
                sector_code: n.sector_code.clone(),
                sbi_section: sector.sbi_section.clone(),
                diagnosis_code: n.diagnosis_code.clone(),
                diagnosis_group: diagnosis.group.code().to_string(),
                primary_exposure: primary_code.to_string(),
                primary_exposure_group: primary.group.code().to_string(),
                sex: n.sex.code().to_string(),
                age_band: AgeBand::from_years(n.birth_year, n.diagnosis_date.year())
                    .code()
                    .to_string(),
                detection_route: n.detection_route.code().to_string(),
                consequence: n.consequence.code().to_string(),
            },
            exposures,
            service: n.affiliation.label().to_string(),
        })
    }
}
