//! Planted signals: a scenario file makes the demo data carry known patterns, so signal detection
//! can be shown (and tested) to find them.

use std::path::Path;

use ods_model::Period;
use serde::{Deserialize, Serialize};

/// A scenario: a list of plants.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The plants.
    #[serde(default)]
    pub plants: Vec<Plant>,
}

/// One planted pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Plant {
    /// Extra notifications of one (diagnosis, exposure) pair in one sector from a month on:
    /// a rise of an existing pair.
    Rise {
        /// CAS code.
        diagnosis: String,
        /// Exposure code (primary).
        exposure: String,
        /// Sector code.
        sector: String,
        /// First month, `YYYY-MM`.
        from: Period,
        /// Expected extra notifications per month (Poisson).
        extra_per_month: f64,
    },
    /// A sector whose reporting drops to `factor` of its level from a month on.
    ReportingDrop {
        /// SBI section letter.
        sbi_section: String,
        /// First month, `YYYY-MM`.
        from: Period,
        /// Share of notifications still filed (0..1).
        factor: f64,
    },
    /// An occupational health service whose doctors stop reporting (no notification, no zero
    /// report) from a month on.
    ServiceSilence {
        /// Service id.
        service: String,
        /// First silent month, `YYYY-MM`.
        from: Period,
    },
    /// A disease-exposure pair that did not occur before, from a month on.
    NewPair {
        /// CAS code.
        diagnosis: String,
        /// Exposure code (primary).
        exposure: String,
        /// Sector code.
        sector: String,
        /// First month, `YYYY-MM`.
        from: Period,
        /// Expected notifications per month (Poisson).
        per_month: f64,
    },
}

/// A scenario file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Cannot read.
    #[error("scenario {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Error.
        source: std::io::Error,
    },
    /// Not valid JSON of the scenario shape.
    #[error("scenario {path}: {source}")]
    Parse {
        /// File.
        path: String,
        /// Error.
        source: serde_json::Error,
    },
    /// A plant names a code that does not exist or a factor out of range.
    #[error("scenario {path}: plant {index}: {reason}")]
    Invalid {
        /// File.
        path: String,
        /// 0-based plant index.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

impl Scenario {
    /// Reads a scenario JSON file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: name.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ScenarioError::Parse { path: name, source })
    }

    /// Whether a doctor of `service` files nothing in `period` (a planted service silence).
    pub fn silences(&self, service: Option<&str>, period: Period) -> bool {
        self.plants.iter().any(|p| match p {
            Plant::ServiceSilence { service: s, from } => {
                Some(s.as_str()) == service && period >= *from
            }
            _ => false,
        })
    }

    /// Checks every code against the lists.
    pub fn check(&self, lists: &ods_codelists::CodeLists, path: &str) -> Result<(), ScenarioError> {
        for (index, plant) in self.plants.iter().enumerate() {
            let invalid = |reason: String| ScenarioError::Invalid {
                path: path.to_string(),
                index,
                reason,
            };
            match plant {
                Plant::Rise {
                    diagnosis,
                    exposure,
                    sector,
                    ..
                }
                | Plant::NewPair {
                    diagnosis,
                    exposure,
                    sector,
                    ..
                } => {
                    if lists.diagnoses.get(diagnosis).is_none() {
                        return Err(invalid(format!("unknown diagnosis '{diagnosis}'")));
                    }
                    if lists.exposures.get(exposure).is_none() {
                        return Err(invalid(format!("unknown exposure '{exposure}'")));
                    }
                    if lists.sectors.get(sector).is_none() {
                        return Err(invalid(format!("unknown sector '{sector}'")));
                    }
                }
                Plant::ServiceSilence { service, .. } => {
                    if lists.services.get(service).is_none() {
                        return Err(invalid(format!("unknown service '{service}'")));
                    }
                }
                Plant::ReportingDrop {
                    sbi_section,
                    factor,
                    ..
                } => {
                    if lists.sectors.get(sbi_section).is_none() || sbi_section.len() != 1 {
                        return Err(invalid(format!(
                            "'{sbi_section}' is not an SBI section letter"
                        )));
                    }
                    if !(0.0..=1.0).contains(factor) {
                        return Err(invalid(format!("factor {factor} is not between 0 and 1")));
                    }
                }
            }
        }
        Ok(())
    }
}
