//! Deterministic, realistic demo data for `ods`.
//!
//! `ods generate --from 2014 --to 2023 --seed 7 --out demo.ndjson` writes one [`DemoRecord`] per
//! line, in time order. The same seed and options give byte-identical output (own PRNG, sorted
//! JSON keys, no hash-map iteration).
//!
//! What it follows (see [`profile`] for each figure's source):
//! * yearly totals of the national registry (`reference/registry_totals.csv`, interpolated);
//! * the diagnosis group mix per year (NCvB key figures; COVID-19 in 2020-2022);
//! * sectors from workforce (CBS 85272NED) x sentinel rate (PIM) x group affinity;
//! * exposures plausible for diagnosis and sector (`data/demo/diagnosis_exposures.csv`),
//!   occupations typical of the section (`data/demo/occupations_by_section.csv`);
//! * about 1,750 doctors: 46% never notify, ~30% notify every year, the rest now and then, with a
//!   heavy-tailed number of notifications per doctor; some core doctors file zero reports;
//! * ~1.5% amendments, ~0.5% withdrawals, ~3% invalid records spread over every rule kind (each
//!   marked with the rule it must break, `expect_rule`);
//! * planted signals from a [`Scenario`].
//!
//! Records carry a synthetic BIG number per doctor (`big`), as a doctor's system would send it;
//! the loader pseudonymises it at intake like any other.

pub mod events;
mod generate;
pub mod profile;
mod rng;
mod scenario;

pub use generate::{generate, DemoRecord, GenerateError, GeneratorConfig, INVALID_RULES};
pub use rng::Rng;
pub use scenario::{Plant, Scenario, ScenarioError};
