//! Reference data: workforce denominators, registry totals and sentinel (PIM) incidence.
//!
//! Sources (see `data/reference/README.md`): CBS StatLine 85272NED for the workforce; NCvB key
//! figures for registry totals; van der Molen et al. (OEM 2012) and NCvB key figures for PIM
//! incidence.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::error::CodeListError;
use crate::parse::read_rows;

/// Employed persons (x 1,000) per SBI section.
#[derive(Debug, Clone, Serialize)]
pub struct Workforce {
    /// Which table and period this is, e.g. `workforce_sbi_2022q3.csv`.
    pub file: String,
    /// Persons x 1,000 by SBI section letter.
    pub employed_x1000: BTreeMap<String, f64>,
    /// English section names.
    pub names_en: BTreeMap<String, String>,
}

impl Workforce {
    /// Total over all listed sections, x 1,000.
    pub fn total_x1000(&self) -> f64 {
        self.employed_x1000.values().sum()
    }
}

/// Registry notifications (and reporting doctors, when published) of one year.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RegistryYear {
    /// Calendar year.
    pub year: i32,
    /// Notifications in the national registry.
    pub notifications: u32,
    /// Doctors who notified at least once, if published.
    pub reporting_doctors: Option<u32>,
}

/// One published sentinel incidence figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PimRate {
    /// Year.
    pub year: i32,
    /// `total`, `sector` or `diagnosis_group`.
    pub stratum_kind: String,
    /// `all`, a sector name or a diagnosis group.
    pub stratum: String,
    /// Cases per 100,000 workers per year.
    pub incidence_per_100k: f64,
    /// Where the figure comes from.
    pub source_note: String,
}

/// All reference data.
#[derive(Debug, Clone, Serialize)]
pub struct ReferenceData {
    /// Workforce denominators.
    pub workforce: Workforce,
    /// Registry totals by year.
    pub registry_totals: Vec<RegistryYear>,
    /// Sentinel incidence.
    pub pim_incidence: Vec<PimRate>,
}

const WORKFORCE: &str = include_str!("../../../data/reference/workforce_sbi_2022q3.csv");
const REGISTRY: &str = include_str!("../../../data/reference/registry_totals.csv");
const PIM: &str = include_str!("../../../data/reference/pim_incidence.csv");

impl ReferenceData {
    /// The reference data compiled into the binary.
    pub fn bundled() -> Result<Self, CodeListError> {
        Ok(ReferenceData {
            workforce: parse_workforce("workforce_sbi_2022q3.csv", WORKFORCE)?,
            registry_totals: parse_registry("registry_totals.csv", REGISTRY)?,
            pim_incidence: parse_pim("pim_incidence.csv", PIM)?,
        })
    }

    /// Replaces the workforce table with a file of the same header.
    pub fn with_workforce_file(mut self, path: &Path) -> Result<Self, CodeListError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| CodeListError::new(&name, 0, format!("cannot read: {e}")))?;
        self.workforce = parse_workforce(&name, &text)?;
        Ok(self)
    }

    /// Replaces the sentinel incidence table (`pim_incidence.csv` header) with a file: the
    /// reference rates of the under-reporting signal and of the demo generator.
    pub fn with_incidence_file(mut self, path: &Path) -> Result<Self, CodeListError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| CodeListError::new(&name, 0, format!("cannot read: {e}")))?;
        self.pim_incidence = parse_pim(&name, &text)?;
        Ok(self)
    }

    /// Relative notification rate of an SBI section: the latest PIM sentinel incidence per
    /// 100,000 of the sector it maps to (`pim_incidence.csv`: NCvB 2016 and 2022; mining and
    /// water/waste from van der Molen et al. 2012, 2009), divided by the national rate of the
    /// same year. Sections without a published figure get 1. Used by the demo generator (how
    /// often each section notifies) and by the under-reporting signal (what each section is
    /// expected to notify, given its workforce).
    pub fn section_rate_ratio(&self, section: &str) -> f64 {
        let sector_name = match section {
            "F" => "construction",
            "H" => "transport",
            "K" => "finance",
            "C" => "industry",
            "Q" => "healthcare",
            "P" => "education",
            "G" => "trade",
            "B" => "mining",
            "E" => "water and waste",
            _ => return 1.0,
        };
        let rate = self
            .pim_incidence
            .iter()
            .filter(|p| p.stratum_kind == "sector" && p.stratum == sector_name)
            .max_by_key(|p| p.year);
        let Some(rate) = rate else { return 1.0 };
        let total = self
            .pim_incidence
            .iter()
            .find(|p| p.stratum_kind == "total" && p.year == rate.year);
        match total {
            Some(t) if t.incidence_per_100k > 0.0 => rate.incidence_per_100k / t.incidence_per_100k,
            _ => 1.0,
        }
    }

    /// Registry notifications of `year`, if published.
    pub fn registry_year(&self, year: i32) -> Option<RegistryYear> {
        self.registry_totals
            .iter()
            .copied()
            .find(|r| r.year == year)
    }
}

fn parse_workforce(file: &str, text: &str) -> Result<Workforce, CodeListError> {
    let (_, rows) = read_rows(
        file,
        text,
        &["sbi_section", "name_nl", "name_en", "employed_x1000"],
        false,
        |row| {
            let section = row.required("sbi_section")?.to_string();
            if section.len() != 1 || !section.as_bytes()[0].is_ascii_uppercase() {
                return Err(row.err(format!("'{section}' is not an SBI section letter")));
            }
            Ok((
                section,
                row.required("name_en")?.to_string(),
                row.number("employed_x1000")?,
            ))
        },
    )?;
    let mut workforce = Workforce {
        file: file.to_string(),
        employed_x1000: BTreeMap::new(),
        names_en: BTreeMap::new(),
    };
    for (section, name, employed) in rows {
        if workforce
            .employed_x1000
            .insert(section.clone(), employed)
            .is_some()
        {
            return Err(CodeListError::new(
                file,
                0,
                format!("section {section} appears twice"),
            ));
        }
        workforce.names_en.insert(section, name);
    }
    Ok(workforce)
}

fn parse_registry(file: &str, text: &str) -> Result<Vec<RegistryYear>, CodeListError> {
    read_rows(
        file,
        text,
        &["year", "notifications", "reporting_doctors", "source_note"],
        false,
        |row| {
            let int = |name: &str| -> Result<Option<u32>, CodeListError> {
                row.optional(name)
                    .map(|t| {
                        t.parse::<u32>().map_err(|_| {
                            row.err(format!("column '{name}': '{t}' is not a whole number"))
                        })
                    })
                    .transpose()
            };
            let year = int("year")?.ok_or_else(|| row.err("column 'year' is empty"))?;
            Ok(RegistryYear {
                year: year as i32,
                notifications: int("notifications")?
                    .ok_or_else(|| row.err("column 'notifications' is empty"))?,
                reporting_doctors: int("reporting_doctors")?,
            })
        },
    )
    .map(|(_, rows)| rows)
}

fn parse_pim(file: &str, text: &str) -> Result<Vec<PimRate>, CodeListError> {
    read_rows(
        file,
        text,
        &[
            "year",
            "stratum_kind",
            "stratum",
            "incidence_per_100k",
            "source_note",
        ],
        false,
        |row| {
            let year_text = row.required("year")?;
            let year = year_text
                .parse::<i32>()
                .map_err(|_| row.err(format!("'{year_text}' is not a year")))?;
            let kind = row.required("stratum_kind")?;
            if !["total", "sector", "diagnosis_group"].contains(&kind) {
                return Err(row.err(format!(
                    "stratum_kind '{kind}' is not one of total, sector, diagnosis_group"
                )));
            }
            Ok(PimRate {
                year,
                stratum_kind: kind.to_string(),
                stratum: row.required("stratum")?.to_string(),
                incidence_per_100k: row.number("incidence_per_100k")?,
                source_note: row.optional("source_note").unwrap_or_default().to_string(),
            })
        },
    )
    .map(|(_, rows)| rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_reference_data_matches_the_sources() {
        let r = ReferenceData::bundled().unwrap();
        assert_eq!(r.workforce.employed_x1000.len(), 19);
        assert_eq!(r.workforce.employed_x1000["F"], 423.0);
        assert_eq!(r.registry_year(2023).map(|y| y.notifications), Some(2347));
        assert!(r.pim_incidence.iter().any(|p| p.year == 2009
            && p.stratum == "construction"
            && p.incidence_per_100k == 1127.0));
    }

    #[test]
    fn malformed_workforce_names_the_line() {
        let err = parse_workforce(
            "w.csv",
            "sbi_section,name_nl,name_en,employed_x1000\nA,a,a,12\nB,b,b,-3\n",
        )
        .unwrap_err();
        assert_eq!(err.line, 3);
    }
}
