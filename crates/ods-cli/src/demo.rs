//! `ods run --demo`: on first start, generate ten years of national demo data, load it through
//! the same intake core as the API (validation, pseudonymisation, durable log), and create demo
//! tokens.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use ods_generator::DemoRecord;
use ods_identity::{BigNumber, Principal, PseudonymKey, Pseudonymizer, TokenStore};
use ods_intake::{Intake, PublishError, NOTIFICATIONS_TOPIC};
use ods_log::EmbeddedLog;
use ods_model::{
    Affiliation, Event, NotificationAmended, NotificationId, NotificationWithdrawn,
    ReporterPseudonym, WithdrawalReason,
};
use ods_validation::{validate_notification, Limits};
use uuid::Uuid;

/// What loading the demo did.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Events written to the log.
    pub events: usize,
    /// Records intake refused (the planted invalid ones), by rule.
    pub refused: HashMap<String, usize>,
}

struct Filed {
    id: NotificationId,
    reporter: ReporterPseudonym,
    notified_at: DateTime<Utc>,
    version: u32,
}

/// Turns demo records into events exactly as intake would, and publishes them.
pub async fn load(
    records: &[DemoRecord],
    intake: &Intake,
    key: &PseudonymKey,
) -> Result<LoadReport> {
    let pseudonymizer = Pseudonymizer::new(key.clone());
    let mut report = LoadReport::default();
    let mut filed: HashMap<String, Filed> = HashMap::new();
    let mut batch: Vec<Event> = Vec::new();
    let lists = intake.lists().clone();
    for record in records {
        let event = match record {
            DemoRecord::Notification {
                reference,
                big,
                at,
                body,
                ..
            } => {
                let reporter = pseudonymizer.pseudonym(&BigNumber::parse(big)?);
                match intake.prepare_filing(&reporter, body, *at) {
                    Ok(mut event) => {
                        event.notified_at = *at;
                        filed.insert(
                            reference.clone(),
                            Filed {
                                id: event.notification_id,
                                reporter,
                                notified_at: *at,
                                version: 1,
                            },
                        );
                        Event::Filed(event)
                    }
                    Err(violations) => {
                        for v in violations {
                            *report.refused.entry(v.rule.id().to_string()).or_default() += 1;
                        }
                        continue;
                    }
                }
            }
            DemoRecord::Amendment {
                reference,
                at,
                body,
                ..
            } => {
                let Some(f) = filed.get_mut(reference) else {
                    continue;
                };
                let Ok(notification) =
                    validate_notification(body, &lists, at.date_naive(), &Limits::default())
                else {
                    continue;
                };
                f.version += 1;
                Event::Amended(NotificationAmended {
                    event_id: Uuid::now_v7(),
                    notification_id: f.id,
                    version: f.version,
                    reporter: f.reporter.clone(),
                    notified_at: f.notified_at,
                    amended_at: *at,
                    notification,
                })
            }
            DemoRecord::Withdrawal {
                reference,
                at,
                reason,
                ..
            } => {
                let Some(f) = filed.get_mut(reference) else {
                    continue;
                };
                f.version += 1;
                Event::Withdrawn(NotificationWithdrawn {
                    event_id: Uuid::now_v7(),
                    notification_id: f.id,
                    version: f.version,
                    reporter: f.reporter.clone(),
                    withdrawn_at: *at,
                    reason: WithdrawalReason::parse(reason)?,
                })
            }
            DemoRecord::ZeroReport {
                big,
                at,
                period,
                service_id,
                ..
            } => {
                let reporter = pseudonymizer.pseudonym(&BigNumber::parse(big)?);
                let affiliation = match service_id {
                    Some(id) => Affiliation::Service(id.clone()),
                    None => Affiliation::SelfEmployed,
                };
                match intake.prepare_zero_report(
                    &reporter,
                    &affiliation,
                    &serde_json::json!(period),
                    *at,
                ) {
                    Ok(z) => Event::ZeroReport(z),
                    Err(_) => continue,
                }
            }
        };
        batch.push(event);
        if batch.len() >= 1000 {
            report.events += publish(intake, std::mem::take(&mut batch)).await?;
        }
    }
    report.events += publish(intake, batch).await?;
    Ok(report)
}

async fn publish(intake: &Intake, events: Vec<Event>) -> Result<usize> {
    let n = events.len();
    if n == 0 {
        return Ok(0);
    }
    loop {
        match intake.publish(events.clone()).await {
            Ok(()) => return Ok(n),
            Err(PublishError::Backpressure) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Err(e) => return Err(e).context("publishing demo events"),
        }
    }
}

/// On first start (empty log): generate, load and create demo tokens. Always prints the tokens.
pub async fn prepare(
    data_dir: &Path,
    intake: &Intake,
    tokens: &TokenStore,
    key: &PseudonymKey,
    log: &EmbeddedLog,
) -> Result<()> {
    let tokens_file = data_dir.join("demo-tokens.txt");
    if log.end_offset(NOTIFICATIONS_TOPIC)? == 0 {
        let started = Instant::now();
        let lists = intake.lists().clone();
        let reference = ods_codelists::reference::ReferenceData::bundled()?;
        let cfg = ods_generator::GeneratorConfig::default();
        let records = ods_generator::generate(&cfg, &lists, &reference)?;
        let report = load(&records, intake, key).await?;
        let refused: usize = report.refused.values().sum();
        tracing::info!(
            events = report.events,
            refused,
            seconds = started.elapsed().as_secs_f64(),
            "demo data loaded"
        );
        let doctor = records.iter().find_map(|r| match r {
            DemoRecord::Notification {
                big,
                body,
                expect_rule: None,
                ..
            } => Some((
                big.clone(),
                body.get("service_id")
                    .and_then(|s| s.as_str())
                    .map(str::to_string),
            )),
            _ => None,
        });
        let mut lines = vec![
            "# Demo tokens for ods run --demo (synthetic data). Use as: Authorization: Bearer <token>".to_string(),
        ];
        if let Some((big, service)) = doctor {
            let affiliation = service
                .map(Affiliation::Service)
                .unwrap_or(Affiliation::SelfEmployed);
            let reporter = Principal::Reporter {
                pseudonym: Pseudonymizer::new(key.clone()).pseudonym(&BigNumber::parse(&big)?),
                affiliation,
            };
            lines.push(format!(
                "reporter     {}",
                tokens.create(&reporter, "demo reporter")?
            ));
        }
        lines.push(format!(
            "analyst      {}",
            tokens.create(&Principal::Analyst, "demo analyst")?
        ));
        lines.push(format!(
            "admin        {}",
            tokens.create(&Principal::Admin, "demo admin")?
        ));
        lines.push(format!(
            "sector_fund  {}  (construction, SBI section F)",
            tokens.create(
                &Principal::SectorFund {
                    sectors: vec!["F".into()]
                },
                "demo fund construction"
            )?
        ));
        lines.push(format!(
            "sector_fund  {}  (bakeries, SBI 1071)",
            tokens.create(
                &Principal::SectorFund {
                    sectors: vec!["1071".into()]
                },
                "demo fund bakeries"
            )?
        ));
        write_private(&tokens_file, &(lines.join("\n") + "\n"))?;
    }
    match std::fs::read_to_string(&tokens_file) {
        Ok(text) => {
            println!("{text}");
            println!("(saved in {})", tokens_file.display());
        }
        Err(_) => println!("the log already held data before --demo; no demo tokens were created (use 'ods tokens create')"),
    }
    Ok(())
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
