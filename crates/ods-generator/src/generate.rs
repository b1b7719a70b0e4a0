//! The generator itself.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use ods_codelists::reference::ReferenceData;
use ods_codelists::{
    CodeListError, CodeLists, Diagnosis, DiagnosisGroup, DiagnosisKind, SectorLevel,
};
use ods_model::Period;
use ods_validation::COMPLAINT_CODE_EXCEPTIONS;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::profile::{group_mix, group_section_affinity, raked_section_weights, yearly_totals};
use crate::rng::Rng;
use crate::scenario::{Plant, Scenario};

const PAIRS: &str = include_str!("../../../data/demo/diagnosis_exposures.csv");
const OCCUPATIONS: &str = include_str!("../../../data/demo/occupations_by_section.csv");

/// The rule each kind of invalid record breaks (every rule a single notification can break).
pub const INVALID_RULES: [&str; 24] = [
    "field.unknown",
    "field.required",
    "field.type",
    "service.missing",
    "service.unknown",
    "diagnosis.format",
    "diagnosis.unknown",
    "diagnosis.not_in_force",
    "diagnosis.complaint_code",
    "diagnosis.accident",
    "exposures.count",
    "exposures.primary",
    "exposures.duplicate",
    "exposure.unknown",
    "sector.unknown",
    "occupation.format",
    "occupation.unknown",
    "sex.invalid",
    "birth_year.implausible",
    "diagnosis_date.format",
    "diagnosis_date.future",
    "consequence.invalid",
    "detection_route.invalid",
    "prevention_advice.invalid",
];

/// What to generate.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// First notification year.
    pub from: i32,
    /// Last notification year.
    pub to: i32,
    /// Seed.
    pub seed: u64,
    /// Number of company doctors (registry: ~1,750).
    pub doctors: usize,
    /// Multiplies the yearly totals (1.0 = national volume).
    pub scale: f64,
    /// Share of invalid records (of valid notifications).
    pub invalid_share: f64,
    /// Share of notifications later amended.
    pub amendment_share: f64,
    /// Share of notifications later withdrawn.
    pub withdrawal_share: f64,
    /// Planted signals.
    pub scenario: Scenario,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            from: 2014,
            to: 2023,
            seed: 7,
            doctors: 1750,
            scale: 1.0,
            invalid_share: 0.03,
            amendment_share: 0.015,
            withdrawal_share: 0.005,
            scenario: Scenario::default(),
        }
    }
}

/// One line of demo data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DemoRecord {
    /// A new notification as a doctor files it.
    Notification {
        /// Generator-local reference, used by later amendments and withdrawals.
        #[serde(rename = "ref")]
        reference: String,
        /// Doctor handle (`D0001`...).
        doctor: String,
        /// The doctor's synthetic BIG number (pseudonymised at intake).
        big: String,
        /// Filing time.
        at: DateTime<Utc>,
        /// The JSON body, exactly as POSTed to `/api/v1/notifications`.
        body: Value,
        /// For invalid records: the rule intake must report.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_rule: Option<String>,
    },
    /// A full replacement of an earlier notification.
    Amendment {
        /// Reference of the notification.
        #[serde(rename = "ref")]
        reference: String,
        /// Doctor handle.
        doctor: String,
        /// BIG number.
        big: String,
        /// Amendment time.
        at: DateTime<Utc>,
        /// The complete new body.
        body: Value,
    },
    /// A withdrawal.
    Withdrawal {
        /// Reference of the notification.
        #[serde(rename = "ref")]
        reference: String,
        /// Doctor handle.
        doctor: String,
        /// BIG number.
        big: String,
        /// Withdrawal time.
        at: DateTime<Utc>,
        /// Reason code.
        reason: String,
    },
    /// No cases in a month.
    ZeroReport {
        /// Doctor handle.
        doctor: String,
        /// BIG number.
        big: String,
        /// Report time.
        at: DateTime<Utc>,
        /// The month.
        period: String,
        /// The doctor's service, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service_id: Option<String>,
    },
}

impl DemoRecord {
    /// When it happens.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            DemoRecord::Notification { at, .. }
            | DemoRecord::Amendment { at, .. }
            | DemoRecord::Withdrawal { at, .. }
            | DemoRecord::ZeroReport { at, .. } => *at,
        }
    }
}

/// The generator cannot run.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A data file is malformed.
    #[error(transparent)]
    Data(#[from] CodeListError),
    /// Bad options.
    #[error("{0}")]
    Config(String),
}

#[derive(Debug, Clone)]
struct Doctor {
    handle: String,
    big: String,
    service_id: Option<String>,
    participation: Participation,
    activity: f64,
    zero_reporter: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Participation {
    Never,
    EveryYear,
    Occasional,
}

struct Pair {
    exposure: String,
    weight: f64,
    sections: String,
}

struct Tables<'a> {
    lists: &'a CodeLists,
    /// diagnosis code -> exposures
    pairs: BTreeMap<String, Vec<Pair>>,
    /// group -> diagnosis codes that may be notified
    by_group: BTreeMap<DiagnosisGroup, Vec<String>>,
    /// section -> (occupation, weight)
    occupations: BTreeMap<String, Vec<(String, f64)>>,
    /// section -> finer sector codes
    fine_sectors: BTreeMap<String, Vec<String>>,
    sections: Vec<String>,
    /// group -> weight per section (same order as `sections`): workforce x rate x affinity,
    /// the seed of each year's raked weights
    section_weights: BTreeMap<DiagnosisGroup, Vec<f64>>,
    /// workforce x relative PIM rate per section (same order)
    section_base: Vec<f64>,
}

fn data_rows(file: &str, text: &str) -> Result<Vec<csv::StringRecord>, CodeListError> {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let mut reader = csv::ReaderBuilder::new().from_reader(body.as_bytes());
    reader
        .records()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CodeListError {
            file: file.to_string(),
            line: e.position().map(|p| p.line()).unwrap_or(0),
            reason: e.to_string(),
        })
}

fn tables<'a>(
    lists: &'a CodeLists,
    reference: &ReferenceData,
) -> Result<Tables<'a>, CodeListError> {
    let bad = |file: &str, reason: String| CodeListError {
        file: file.to_string(),
        line: 0,
        reason,
    };
    let mut pairs: BTreeMap<String, Vec<Pair>> = BTreeMap::new();
    for row in data_rows("diagnosis_exposures.csv", PAIRS)? {
        let (d, e) = (row.get(0).unwrap_or(""), row.get(1).unwrap_or(""));
        if lists.diagnoses.get(d).is_none() || lists.exposures.get(e).is_none() {
            return Err(bad(
                "diagnosis_exposures.csv",
                format!("unknown code in pair {d},{e}"),
            ));
        }
        let weight: f64 = row.get(2).and_then(|w| w.parse().ok()).unwrap_or(1.0);
        pairs.entry(d.to_string()).or_default().push(Pair {
            exposure: e.to_string(),
            weight,
            sections: row.get(3).unwrap_or("").to_string(),
        });
    }
    let mut by_group: BTreeMap<DiagnosisGroup, Vec<String>> = BTreeMap::new();
    for d in lists.diagnoses.iter() {
        let notifiable = d.kind == DiagnosisKind::Disease
            || (d.kind == DiagnosisKind::Complaint
                && COMPLAINT_CODE_EXCEPTIONS.contains(&d.code.as_str()));
        if notifiable && pairs.contains_key(&d.code) {
            by_group.entry(d.group).or_default().push(d.code.clone());
        }
    }
    let mut occupations: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for row in data_rows("occupations_by_section.csv", OCCUPATIONS)? {
        let weight: f64 = row.get(2).and_then(|w| w.parse().ok()).unwrap_or(1.0);
        occupations
            .entry(row.get(0).unwrap_or("").to_string())
            .or_default()
            .push((row.get(1).unwrap_or("").to_string(), weight));
    }
    let mut fine_sectors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in lists
        .sectors
        .iter()
        .filter(|s| s.level != SectorLevel::Section && s.validity.to.is_none())
    {
        fine_sectors
            .entry(s.sbi_section.clone())
            .or_default()
            .push(s.code.clone());
    }
    let sections: Vec<String> = reference.workforce.employed_x1000.keys().cloned().collect();
    let section_base: Vec<f64> = sections
        .iter()
        .map(|s| reference.workforce.employed_x1000[s] * reference.section_rate_ratio(s))
        .collect();
    let section_weights = DiagnosisGroup::ALL
        .iter()
        .map(|g| {
            let weights = sections
                .iter()
                .zip(&section_base)
                .map(|(s, base)| base * group_section_affinity(*g, s))
                .collect();
            (*g, weights)
        })
        .collect();
    Ok(Tables {
        lists,
        pairs,
        by_group,
        occupations,
        fine_sectors,
        sections,
        section_weights,
        section_base,
    })
}

fn at(date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(hour, minute, 0).unwrap_or_default())
}

fn random_time_in(rng: &mut Rng, period: Period) -> DateTime<Utc> {
    let first = period.first_day();
    let days = (period.next().first_day() - first).num_days().max(1);
    let date = first + Duration::days(rng.below(days as usize) as i64);
    at(date, 8 + rng.below(10) as u32, rng.below(60) as u32)
}

struct Built {
    body: Value,
    section: String,
}

/// Builds a valid notification body for a filing at `notified_at`.
#[allow(clippy::too_many_arguments)]
fn build_body(
    t: &Tables<'_>,
    rng: &mut Rng,
    doctor: &Doctor,
    notified_at: DateTime<Utc>,
    group: DiagnosisGroup,
    section: &str,
    forced: Option<(&str, &str, &str)>,
) -> Option<Built> {
    let notified = notified_at.date_naive();
    let lag = ((-rng.unit().max(1e-12).ln()) * 30.0).min(300.0) as i64;
    let diagnosis_date = notified - Duration::days(lag);
    let year = notified.year();
    let (diagnosis, primary, sector) = match forced {
        Some((d, e, s)) => (d.to_string(), e.to_string(), s.to_string()),
        None => {
            let candidates: Vec<&String> = t
                .by_group
                .get(&group)?
                .iter()
                .filter(|c| {
                    t.lists.diagnoses.in_force(c, diagnosis_date).is_some()
                        && t.pairs[*c].iter().any(|p| {
                            t.lists
                                .exposures
                                .in_force(&p.exposure, diagnosis_date)
                                .is_some()
                        })
                })
                .collect();
            if candidates.is_empty() {
                return None;
            }
            let weights: Vec<f64> = candidates
                .iter()
                .map(|c| {
                    let base: f64 = t.pairs[*c]
                        .iter()
                        .map(|p| {
                            p.weight
                                * if p.sections.contains(section) {
                                    3.0
                                } else if p.sections.is_empty() {
                                    1.0
                                } else {
                                    0.3
                                }
                        })
                        .sum();
                    let covid = match c.as_str() {
                        "R605" if (2020..=2022).contains(&year) => 40.0,
                        "R606" if year >= 2021 => 8.0,
                        _ => 1.0,
                    };
                    base * covid
                })
                .collect();
            let diagnosis = candidates[rng.weighted(&weights)].clone();
            let options: Vec<&Pair> = t.pairs[&diagnosis]
                .iter()
                .filter(|p| {
                    t.lists
                        .exposures
                        .in_force(&p.exposure, diagnosis_date)
                        .is_some()
                })
                .collect();
            let pw: Vec<f64> = options
                .iter()
                .map(|p| {
                    p.weight
                        * if p.sections.contains(section) {
                            4.0
                        } else if p.sections.is_empty() {
                            1.0
                        } else {
                            0.25
                        }
                })
                .collect();
            let primary = options[rng.weighted(&pw)].exposure.clone();
            let sector = fine_sector(t, rng, section, &primary);
            (diagnosis, primary, sector)
        }
    };
    let mut exposures = vec![json!({"code": primary, "primary": true})];
    if let Some(options) = t.pairs.get(&diagnosis) {
        for p in options {
            if p.exposure != primary
                && exposures.len() < 3
                && rng.chance(0.25)
                && t.lists
                    .exposures
                    .in_force(&p.exposure, diagnosis_date)
                    .is_some()
            {
                exposures.push(json!({"code": p.exposure, "primary": false}));
            }
        }
    }
    let sbi = t.lists.sbi_section(&sector).unwrap_or(section).to_string();
    let occupation = t
        .occupations
        .get(&sbi)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let w: Vec<f64> = o.iter().map(|(_, w)| *w).collect();
            o[rng.weighted(&w)].0.clone()
        })
        .unwrap_or_else(|| "93".to_string());
    let female_share = match (sbi.as_str(), group) {
        (_, DiagnosisGroup::Hearing) => 0.08,
        ("Q", _) => 0.8,
        ("P", _) => 0.65,
        ("S" | "I" | "N", _) => 0.55,
        ("F" | "B" | "C" | "H", _) => 0.15,
        _ => 0.4,
    };
    let sex = if rng.chance(female_share) {
        "F"
    } else if rng.chance(0.005) {
        "X"
    } else {
        "M"
    };
    let age = (47.0 + 11.0 * rng.normal()).clamp(18.0, 67.0) as i32;
    let roll = rng.unit();
    let consequence = if roll < 0.85 {
        "temporary"
    } else if roll < 0.93 {
        "permanent"
    } else if roll < 0.9987 {
        "none"
    } else {
        "death"
    };
    let absence = match consequence {
        "none" => {
            if rng.chance(0.5) {
                "lt1m"
            } else {
                "unknown"
            }
        }
        "permanent" => {
            if rng.chance(0.8) {
                "gt6m"
            } else {
                "3to6m"
            }
        }
        "death" => "unknown",
        _ => ["lt1m", "1to3m", "3to6m", "gt6m", "unknown"]
            [rng.weighted(&[0.2, 0.35, 0.2, 0.15, 0.1])],
    };
    let route = ["absence_guidance", "consultation", "pmo_pago"][rng.weighted(&[0.87, 0.10, 0.03])];
    let mut advice = Vec::new();
    if rng.chance(0.98) {
        let types = [
            "treatment",
            "organisational",
            "behavioural",
            "further_medical",
            "workplace_survey",
            "ppe",
            "technical",
        ];
        let weights = [0.5, 0.6, 0.3, 0.15, 0.2, 0.1, 0.1];
        for (i, ty) in types.iter().enumerate() {
            if rng.chance(weights[i] * 0.8) {
                advice.push(*ty);
            }
        }
        if advice.is_empty() {
            advice.push("organisational");
        }
    }
    let mut body = json!({
        "diagnosis_code": diagnosis,
        "exposures": exposures,
        "sector_code": sector,
        "occupation_code": occupation,
        "sex": sex,
        "birth_year": diagnosis_date.year() - age,
        "diagnosis_date": diagnosis_date.format("%Y-%m-%d").to_string(),
        "consequence": consequence,
        "absence_band": absence,
        "detection_route": route,
        "prevention_advice": advice,
    });
    match &doctor.service_id {
        Some(id) => body["service_id"] = json!(id),
        None => body["self_employed"] = json!(true),
    }
    let guideline =
        t.lists.guidelines.iter().find(|g| {
            g.validity.contains(diagnosis_date) && g.diagnosis_codes.contains(&diagnosis)
        });
    if let Some(g) = guideline {
        if rng.chance(0.5) {
            body["guideline_code"] = json!(g.code);
        }
    }
    Some(Built { body, section: sbi })
}

/// Sector codes that typically go with an exposure (flour dust in bakeries, ...).
const EXPOSURE_SECTOR_HINTS: [(&str, &str, f64); 6] = [
    ("CH012", "1071", 0.8),
    ("CH013", "1071", 0.8),
    ("CH016", "9602", 0.8),
    ("BI001", "8610", 0.5),
    ("PH001", "43", 0.4),
    ("CH002", "4334", 0.4),
];

fn fine_sector(t: &Tables<'_>, rng: &mut Rng, section: &str, primary: &str) -> String {
    for (exposure, sector, p) in EXPOSURE_SECTOR_HINTS {
        if exposure == primary && t.lists.sbi_section(sector) == Some(section) && rng.chance(p) {
            return sector.to_string();
        }
    }
    match t.fine_sectors.get(section) {
        Some(codes) if !codes.is_empty() && rng.chance(0.75) => {
            codes[rng.below(codes.len())].clone()
        }
        _ => section.to_string(),
    }
}

/// Sets a random diagnosis code that satisfies `fits`; false when there is none.
fn replace_diagnosis(
    obj: &mut serde_json::Map<String, Value>,
    t: &Tables<'_>,
    rng: &mut Rng,
    fits: impl Fn(&Diagnosis) -> bool,
) -> bool {
    let codes: Vec<&str> = t
        .lists
        .diagnoses
        .iter()
        .filter(|d| fits(d))
        .map(|d| d.code.as_str())
        .collect();
    if codes.is_empty() {
        return false;
    }
    obj.insert(
        "diagnosis_code".into(),
        json!(codes[rng.below(codes.len())]),
    );
    true
}

/// Breaks one rule in a valid body; returns false when this body cannot express that rule.
fn break_rule(
    rule: &str,
    body: &mut Value,
    t: &Tables<'_>,
    rng: &mut Rng,
    notified: NaiveDate,
) -> bool {
    let obj = match body.as_object_mut() {
        Some(o) => o,
        None => return false,
    };
    obj.remove("guideline_code");
    match rule {
        "field.unknown" => {
            obj.insert("remarks".into(), json!("free text is not accepted"));
        }
        "field.required" => {
            obj.remove("consequence");
        }
        "field.type" => {
            let year = obj.get("birth_year").cloned().unwrap_or(json!(1970));
            obj.insert("birth_year".into(), json!(year.to_string()));
        }
        "service.missing" => {
            obj.remove("service_id");
            obj.remove("self_employed");
        }
        "service.unknown" => {
            obj.remove("self_employed");
            obj.insert("service_id".into(), json!("AD9999"));
        }
        "diagnosis.format" => {
            obj.insert("diagnosis_code".into(), json!("M77.1"));
        }
        "diagnosis.unknown" => {
            obj.insert("diagnosis_code".into(), json!("Z999"));
        }
        "diagnosis.not_in_force" => {
            // a code retired well before the diagnosis date
            let retired = |d: &Diagnosis| {
                d.kind == DiagnosisKind::Disease
                    && d.validity
                        .to
                        .is_some_and(|to| to < notified - Duration::days(400))
            };
            return replace_diagnosis(obj, t, rng, retired);
        }
        "diagnosis.complaint_code" => {
            let complaint = |d: &Diagnosis| {
                d.kind == DiagnosisKind::Complaint
                    && !COMPLAINT_CODE_EXCEPTIONS.contains(&d.code.as_str())
                    && d.validity.contains(notified - Duration::days(200))
            };
            return replace_diagnosis(obj, t, rng, complaint);
        }
        "diagnosis.accident" => {
            let accident = |d: &Diagnosis| {
                d.kind == DiagnosisKind::Accident
                    && d.validity.contains(notified - Duration::days(200))
            };
            return replace_diagnosis(obj, t, rng, accident);
        }
        "exposures.count" => {
            obj.insert("exposures".into(), json!([]));
        }
        "exposures.primary" => {
            obj.insert(
                "exposures".into(),
                json!([{"code": "PS001", "primary": true}, {"code": "ER001", "primary": true}]),
            );
        }
        "exposures.duplicate" => {
            obj.insert(
                "exposures".into(),
                json!([{"code": "PS001", "primary": true}, {"code": "PS001", "primary": false}]),
            );
        }
        "exposure.unknown" => {
            obj.insert(
                "exposures".into(),
                json!([{"code": "ER999", "primary": true}]),
            );
        }
        "sector.unknown" => {
            obj.insert("sector_code".into(), json!("9999"));
        }
        "occupation.format" => {
            obj.insert("occupation_code".into(), json!("7"));
        }
        "occupation.unknown" => {
            obj.insert("occupation_code".into(), json!("1099"));
        }
        "sex.invalid" => {
            obj.insert("sex".into(), json!("V"));
        }
        "birth_year.implausible" => {
            obj.insert("birth_year".into(), json!(notified.year() - 5));
        }
        "diagnosis_date.format" => {
            obj.insert(
                "diagnosis_date".into(),
                json!(notified.format("%d-%m-%Y").to_string()),
            );
        }
        "diagnosis_date.future" => {
            obj.insert(
                "diagnosis_date".into(),
                json!((notified + Duration::days(10))
                    .format("%Y-%m-%d")
                    .to_string()),
            );
        }
        "consequence.invalid" => {
            obj.insert("consequence".into(), json!("severe"));
        }
        "detection_route.invalid" => {
            obj.insert("detection_route".into(), json!("pmo"));
        }
        "prevention_advice.invalid" => {
            obj.insert("prevention_advice".into(), json!(["yoga"]));
        }
        _ => return false,
    }
    true
}

fn synthetic_big(rng: &mut Rng, used: &mut BTreeSet<String>) -> String {
    loop {
        // BIG numbers of the demo start with 9 (no real register number is implied)
        let big = format!("9{:010}", rng.next_u64() % 10_000_000_000);
        if used.insert(big.clone()) {
            return big;
        }
    }
}

fn doctors(cfg: &GeneratorConfig, lists: &CodeLists, rng: &mut Rng) -> Vec<Doctor> {
    let services: Vec<&str> = lists
        .services
        .iter()
        .filter(|s| s.validity.to.is_none() && s.validity.from.year() <= cfg.from)
        .map(|s| s.service_id.as_str())
        .collect();
    let mut used = BTreeSet::new();
    (0..cfg.doctors)
        .map(|i| {
            let roll = rng.unit();
            let participation = if roll < 0.46 {
                Participation::Never
            } else if roll < 0.76 {
                Participation::EveryYear
            } else {
                Participation::Occasional
            };
            // heavy tail: Pareto(alpha 1.3) activity weights
            let activity = (1.0 - rng.unit()).max(1e-9).powf(-1.0 / 1.3);
            Doctor {
                handle: format!("D{:04}", i + 1),
                big: synthetic_big(rng, &mut used),
                service_id: if rng.chance(0.12) || services.is_empty() {
                    None
                } else {
                    Some(services[rng.below(services.len())].to_string())
                },
                participation,
                activity,
                zero_reporter: participation == Participation::EveryYear && rng.chance(0.2),
            }
        })
        .collect()
}

/// Generates the demo records, sorted by time.
pub fn generate(
    cfg: &GeneratorConfig,
    lists: &CodeLists,
    reference: &ReferenceData,
) -> Result<Vec<DemoRecord>, GenerateError> {
    if cfg.from > cfg.to {
        return Err(GenerateError::Config(format!(
            "--from {} is after --to {}",
            cfg.from, cfg.to
        )));
    }
    if cfg.doctors == 0 || cfg.scale.is_nan() || cfg.scale <= 0.0 {
        return Err(GenerateError::Config(
            "doctors and scale must be positive".into(),
        ));
    }
    let t = tables(lists, reference)?;
    let mut root = Rng::new(cfg.seed);
    let doctor_list = doctors(cfg, lists, &mut root.fork(1));
    let totals = yearly_totals(reference, cfg.from, cfg.to);
    let mut records: Vec<(DateTime<Utc>, u64, DemoRecord)> = Vec::new();
    let mut seq = 0u64;
    let mut push = |records: &mut Vec<(DateTime<Utc>, u64, DemoRecord)>, r: DemoRecord| {
        seq += 1;
        records.push((r.at(), seq, r));
    };
    let mut active_months: BTreeMap<usize, BTreeSet<Period>> = BTreeMap::new();
    let mut counter = 0usize;
    let groups: Vec<DiagnosisGroup> = DiagnosisGroup::ALL.to_vec();
    for year in cfg.from..=cfg.to {
        let mut rng = root.fork(1000 + year as u64);
        let active: Vec<usize> = doctor_list
            .iter()
            .enumerate()
            .filter(|(_, d)| match d.participation {
                Participation::Never => false,
                Participation::EveryYear => true,
                Participation::Occasional => rng.chance(0.35),
            })
            .map(|(i, _)| i)
            .collect();
        let activity: Vec<f64> = active.iter().map(|i| doctor_list[*i].activity).collect();
        let mix = group_mix(year);
        let mix_weights: Vec<f64> = groups.iter().map(|g| mix[g]).collect();
        let section_weights = raked_section_weights(&mix, &t.section_weights, &t.section_base);
        let n = (totals[&year] * cfg.scale).round() as usize;
        let mut valid_refs: Vec<(String, usize, DateTime<Utc>, Value)> = Vec::new();
        let core: Vec<usize> = active
            .iter()
            .copied()
            .filter(|i| doctor_list[*i].participation == Participation::EveryYear)
            .collect();
        let mut make = |rng: &mut Rng,
                        forced: Option<(&str, &str, &str, Period)>,
                        records: &mut Vec<(DateTime<Utc>, u64, DemoRecord)>,
                        valid_refs: &mut Vec<(String, usize, DateTime<Utc>, Value)>,
                        expect: Option<&str>,
                        doctor_hint: Option<usize>| {
            let (period, group, section) = match forced {
                Some((_, _, sector, period)) => (
                    period,
                    DiagnosisGroup::Other,
                    lists.sbi_section(sector).unwrap_or("C").to_string(),
                ),
                None => {
                    let period = Period::new(year, 1 + rng.below(12) as u32)
                        .unwrap_or_else(|_| Period::of(NaiveDate::MIN));
                    let group = groups[rng.weighted(&mix_weights)];
                    let section = t.sections[rng.weighted(&section_weights[&group])].clone();
                    (period, group, section)
                }
            };
            for plant in &cfg.scenario.plants {
                if let Plant::ReportingDrop {
                    sbi_section,
                    from,
                    factor,
                } = plant
                {
                    if *sbi_section == section
                        && period >= *from
                        && forced.is_none()
                        && !rng.chance(*factor)
                    {
                        return;
                    }
                }
            }
            if active.is_empty() {
                return;
            }
            // a planted pair is spread over many doctors, never one
            let doctor_index = match (doctor_hint, forced) {
                (Some(i), _) => i,
                (None, Some(_)) => active[rng.below(active.len())],
                (None, None) => active[rng.weighted(&activity)],
            };
            let doctor = &doctor_list[doctor_index];
            if cfg.scenario.silences(doctor.service_id.as_deref(), period) {
                return;
            }
            let notified_at = random_time_in(rng, period);
            let forced_codes = forced.map(|(d, e, s, _)| (d, e, s));
            let Some(built) =
                build_body(&t, rng, doctor, notified_at, group, &section, forced_codes)
            else {
                return;
            };
            let mut body = built.body;
            let _ = built.section;
            if let Some(rule) = expect {
                if !break_rule(rule, &mut body, &t, rng, notified_at.date_naive()) {
                    return;
                }
            }
            counter += 1;
            let reference = format!("n{counter:07}");
            if expect.is_none() {
                active_months
                    .entry(doctor_index)
                    .or_default()
                    .insert(period);
                valid_refs.push((reference.clone(), doctor_index, notified_at, body.clone()));
            }
            push(
                records,
                DemoRecord::Notification {
                    reference,
                    doctor: doctor.handle.clone(),
                    big: doctor.big.clone(),
                    at: notified_at,
                    body,
                    expect_rule: expect.map(str::to_string),
                },
            );
        };
        // every core doctor notifies at least once a year (the ~30% who report every year)
        for k in 0..n {
            let hint = if n > core.len() {
                core.get(k).copied()
            } else {
                None
            };
            make(&mut rng, None, &mut records, &mut valid_refs, None, hint);
        }
        // planted pairs
        for plant in &cfg.scenario.plants {
            let (d, e, s, from, rate) = match plant {
                Plant::Rise {
                    diagnosis,
                    exposure,
                    sector,
                    from,
                    extra_per_month,
                } => (diagnosis, exposure, sector, from, *extra_per_month),
                Plant::NewPair {
                    diagnosis,
                    exposure,
                    sector,
                    from,
                    per_month,
                } => (diagnosis, exposure, sector, from, *per_month),
                Plant::ReportingDrop { .. } | Plant::ServiceSilence { .. } => continue,
            };
            for month in 1..=12 {
                let Ok(period) = Period::new(year, month) else {
                    continue;
                };
                if period < *from {
                    continue;
                }
                for _ in 0..rng.poisson(rate * cfg.scale) {
                    make(
                        &mut rng,
                        Some((d, e, s, period)),
                        &mut records,
                        &mut valid_refs,
                        None,
                        None,
                    );
                }
            }
        }
        // invalid records, every rule kind in turn
        let invalid = (n as f64 * cfg.invalid_share).round() as usize;
        for i in 0..invalid {
            let rule = INVALID_RULES[i % INVALID_RULES.len()];
            make(
                &mut rng,
                None,
                &mut records,
                &mut valid_refs,
                Some(rule),
                None,
            );
        }
        // amendments and withdrawals
        for (reference, doctor_index, notified_at, body) in &valid_refs {
            let doctor = &doctor_list[*doctor_index];
            let later = *notified_at + Duration::days(1 + rng.below(30) as i64);
            if rng.chance(cfg.amendment_share) {
                let mut amended = body.clone();
                amended["consequence"] = json!(if rng.chance(0.5) {
                    "permanent"
                } else {
                    "temporary"
                });
                amended["absence_band"] = json!(["1to3m", "3to6m", "gt6m"][rng.below(3)]);
                push(
                    &mut records,
                    DemoRecord::Amendment {
                        reference: reference.clone(),
                        doctor: doctor.handle.clone(),
                        big: doctor.big.clone(),
                        at: later,
                        body: amended,
                    },
                );
            } else if rng.chance(cfg.withdrawal_share / (1.0 - cfg.amendment_share)) {
                push(
                    &mut records,
                    DemoRecord::Withdrawal {
                        reference: reference.clone(),
                        doctor: doctor.handle.clone(),
                        big: doctor.big.clone(),
                        at: later,
                        reason: ["duplicate", "not_occupational", "entered_in_error", "other"]
                            [rng.weighted(&[0.4, 0.4, 0.15, 0.05])]
                        .to_string(),
                    },
                );
            }
        }
    }
    // zero reports: months without a case, filed on the 1st of the next month
    for (index, doctor) in doctor_list
        .iter()
        .enumerate()
        .filter(|(_, d)| d.zero_reporter)
    {
        let busy = active_months.get(&index).cloned().unwrap_or_default();
        let mut rng = root.fork(50_000 + index as u64);
        let (Ok(mut period), Ok(last)) = (Period::new(cfg.from, 1), Period::new(cfg.to, 12)) else {
            continue;
        };
        while period <= last {
            if !busy.contains(&period)
                && rng.chance(0.9)
                && !cfg.scenario.silences(doctor.service_id.as_deref(), period)
            {
                let filed = period.next().first_day();
                push(
                    &mut records,
                    DemoRecord::ZeroReport {
                        doctor: doctor.handle.clone(),
                        big: doctor.big.clone(),
                        at: at(filed, 9, rng.below(60) as u32),
                        period: period.to_string(),
                        service_id: doctor.service_id.clone(),
                    },
                );
            }
            period = period.next();
        }
    }
    records.sort_by_key(|r| (r.0, r.1));
    Ok(records.into_iter().map(|(_, _, r)| r).collect())
}
