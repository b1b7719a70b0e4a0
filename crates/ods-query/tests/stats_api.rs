//! The statistics routes over HTTP (in process, `tower::ServiceExt::oneshot`) on two years of
//! demo data in the embedded store: counts, trend and incidence for analysts and sector funds, reporters for analysts,
//! the 400 answers, roles, and the OpenAPI description of every route.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use ods_codelists::reference::ReferenceData;
use ods_codelists::CodeLists;
use ods_generator::events::{demo_events, DemoEvents};
use ods_generator::GeneratorConfig;
use ods_http::RateLimiter;
use ods_identity::{Principal, TokenStore};
use ods_log::LogRecord;
use ods_model::{Affiliation, ReporterPseudonym};
use ods_processor::Processor;
use ods_query::{router, QueryApi, QueryState};
use ods_store::{AnalyticsStore, CountQuery, Dimension, EmbeddedStore};
use ods_validation::Limits;
use serde_json::Value;
use tower::ServiceExt;
use utoipa::OpenApi;

struct Fixture {
    _dir: tempfile::TempDir,
    app: Router,
    store: EmbeddedStore,
    tokens: Arc<TokenStore>,
    analyst: String,
    fund: String,
    reporter: String,
}

/// Two years of demo data (a fifth of national volume), folded into an embedded store.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let lists = CodeLists::bundled().unwrap();
        let reference = ReferenceData::bundled().unwrap();
        let cfg = GeneratorConfig {
            from: 2022,
            to: 2023,
            seed: 11,
            scale: 0.2,
            ..GeneratorConfig::default()
        };
        let demo = ods_generator::generate(&cfg, &lists, &reference).unwrap();
        let DemoEvents { events, .. } = demo_events(&demo, &lists, None);
        let records: Vec<LogRecord> = events
            .iter()
            .enumerate()
            .map(|(offset, e)| LogRecord {
                topic: "t".into(),
                offset: offset as i64,
                key: String::new(),
                payload: ods_wire::encode_event(e).unwrap().1,
                appended_at_ms: 0,
            })
            .collect();
        let store = EmbeddedStore::open(&dir.path().join("store.sqlite")).unwrap();
        let processor = Processor::new(Arc::new(lists), Limits::default());
        for chunk in records.chunks(1000) {
            store.apply_batch("t", 0, &processor, chunk).unwrap();
        }
        let tokens = TokenStore::open(&dir.path().join("tokens.sqlite")).unwrap();
        let analyst = tokens.create(&Principal::Analyst, "analyst").unwrap();
        let fund = tokens
            .create(
                &Principal::SectorFund {
                    sectors: vec!["Q".into(), "1071".into()],
                },
                "fund",
            )
            .unwrap();
        let reporter = tokens
            .create(
                &Principal::Reporter {
                    pseudonym: ReporterPseudonym::from_hex(&"ab".repeat(16)).unwrap(),
                    affiliation: Affiliation::Service("AD0001".into()),
                },
                "doctor",
            )
            .unwrap();
        let tokens = Arc::new(tokens);
        let app = router(QueryState {
            store: Arc::new(store.clone()),
            tokens: tokens.clone(),
            limiter: Arc::new(RateLimiter::new(100_000, 10_000)),
            reference: Arc::new(reference),
        });
        Fixture {
            _dir: dir,
            app,
            store,
            tokens,
            analyst,
            fund,
            reporter,
        }
    })
}

async fn get(uri: &str, token: Option<&str>) -> (StatusCode, String, Option<String>) {
    let mut req = Request::builder().uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let response = fixture()
        .app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let body = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    (
        status,
        String::from_utf8(body.to_vec()).unwrap(),
        content_type,
    )
}

async fn json(uri: &str, token: &str) -> Value {
    let (status, body, _) = get(uri, Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Every key anywhere in a JSON document.
fn keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.push(k.clone());
                keys(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn analysts_get_counts_with_suppression_and_funds_their_own_sectors_under_stricter_rules() {
    let f = fixture();
    let all = json("/api/v1/stats/counts?group_by=year,sbi_section", &f.analyst).await;
    assert_eq!(all["suppression_threshold"], 5);
    assert_eq!(all["min_reporters"], 0);
    let cells = all["cells"].as_array().unwrap();
    let sections: std::collections::BTreeSet<&str> = cells
        .iter()
        .map(|c| c["dimensions"]["sbi_section"].as_str().unwrap())
        .collect();
    assert!(sections.len() > 10, "{sections:?}");
    for c in cells {
        match c["count"].as_i64() {
            Some(n) => assert!(n >= 5, "{c}"),
            None => assert_eq!(c["suppressed"], true),
        }
    }

    let fund = json(
        "/api/v1/stats/counts?group_by=year,diagnosis_group",
        &f.fund,
    )
    .await;
    assert_eq!(fund["suppression_threshold"], 10);
    assert_eq!(fund["min_reporters"], 3);
    let fund_cells = fund["cells"].as_array().unwrap();
    assert!(fund_cells.iter().any(|c| c["count"].as_i64().is_some()));
    for c in fund_cells {
        if let Some(n) = c["count"].as_i64() {
            assert!(n >= 10, "{c}");
        }
    }
    // the fund's cells are its sectors only: their sum is below the national one
    let scoped_total: i64 = json("/api/v1/stats/counts", &f.fund).await["cells"][0]["count"]
        .as_i64()
        .unwrap();
    let national: i64 = json("/api/v1/stats/counts", &f.analyst).await["cells"][0]["count"]
        .as_i64()
        .unwrap();
    let in_scope: i64 = f
        .store
        .counts_unsuppressed(&CountQuery {
            sector_scope: Some(vec!["Q".into(), "1071".into()]),
            ..CountQuery::default()
        })
        .unwrap()[0]
        .1;
    assert_eq!(scoped_total, in_scope);
    assert!(scoped_total < national);
    // never reporter-level data
    let mut all_keys = Vec::new();
    keys(&fund, &mut all_keys);
    assert!(
        all_keys
            .iter()
            .all(|k| !k.contains("reporter") || k == "min_reporters"),
        "{all_keys:?}"
    );
    // grouping by sector shows only the fund's sectors
    let by_sector = json("/api/v1/stats/counts?group_by=sbi_section", &f.fund).await;
    for c in by_sector["cells"].as_array().unwrap() {
        let s = c["dimensions"]["sbi_section"].as_str().unwrap();
        assert!(s == "Q" || s == "C", "{c}");
    }
}

#[tokio::test]
async fn the_published_answer_is_the_stores_counts_and_csv_says_the_same() {
    let f = fixture();
    let j = json(
        "/api/v1/stats/counts?group_by=quarter,sex&from=2022-04&diagnosis_group=musculoskeletal,skin",
        &f.analyst,
    )
    .await;
    let query = CountQuery {
        group_by: vec![Dimension::Quarter, Dimension::Sex],
        filters: vec![(
            Dimension::DiagnosisGroup,
            vec!["musculoskeletal".into(), "skin".into()],
        )],
        from: Some("2022-04".into()),
        ..CountQuery::default()
    };
    let published = AnalyticsStore::counts(&f.store, &query).await.unwrap();
    assert_eq!(
        serde_json::to_value(&published.cells).unwrap(),
        j["cells"],
        "the route answers what the store publishes"
    );
    let (status, csv, content_type) = get(
        "/api/v1/stats/counts?group_by=quarter,sex&from=2022-04&diagnosis_group=musculoskeletal,skin&format=csv",
        Some(&f.analyst),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.unwrap().starts_with("text/csv"));
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("quarter,sex,count,suppressed"));
    assert_eq!(lines.count(), published.cells.len());
}

#[tokio::test]
async fn the_trend_has_every_period_and_matches_counts() {
    let f = fixture();
    let t = json(
        "/api/v1/stats/trend?interval=quarter&from=2022-01&to=2023-12&diagnosis_group=respiratory",
        &f.analyst,
    )
    .await;
    let points = t["points"].as_array().unwrap();
    let periods: Vec<&str> = points
        .iter()
        .map(|p| p["period"].as_str().unwrap())
        .collect();
    assert_eq!(
        periods,
        vec![
            "2022-Q1", "2022-Q2", "2022-Q3", "2022-Q4", "2023-Q1", "2023-Q2", "2023-Q3", "2023-Q4"
        ]
    );
    assert_eq!(t["filters"]["diagnosis_group"][0], "respiratory");
    // the same cells as counts grouped by quarter with the same filter and range
    let c = json(
        "/api/v1/stats/counts?group_by=quarter&from=2022-01&to=2023-12&diagnosis_group=respiratory",
        &f.analyst,
    )
    .await;
    let by_quarter: BTreeMap<&str, &Value> = c["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["dimensions"]["quarter"].as_str().unwrap(), &c["count"]))
        .collect();
    for p in points {
        let period = p["period"].as_str().unwrap();
        match by_quarter.get(period) {
            Some(count) => assert_eq!(&p["count"], *count, "{period}"),
            None => assert_eq!(p["count"], 0, "{period} has no notifications: 0"),
        }
    }

    // a rare diagnosis group by month: every month there, zeros filled, small ones suppressed
    let rare = json(
        "/api/v1/stats/trend?interval=month&from=2022-01&to=2023-12&diagnosis_group=cancer",
        &f.analyst,
    )
    .await;
    let points = rare["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    for p in points {
        if let Some(n) = p["count"].as_i64() {
            assert!(n == 0 || n >= 5, "{p}");
        }
    }
    // without a range: from the first to the last month with data
    let yearly = json("/api/v1/stats/trend?interval=year", &f.fund).await;
    assert_eq!(yearly["from"], "2022-01");
    assert_eq!(yearly["to"], "2023-12");
    assert_eq!(yearly["points"].as_array().unwrap().len(), 2);
    assert_eq!(yearly["suppression_threshold"], 10);
}

#[tokio::test]
async fn incidence_per_100k_with_exact_intervals() {
    let f = fixture();
    let i = json("/api/v1/stats/incidence?year=2023", &f.analyst).await;
    assert_eq!(
        (i["from"].as_str(), i["to"].as_str()),
        (Some("2023-01"), Some("2023-12"))
    );
    assert_eq!(i["months"], 12);
    assert_eq!(i["confidence_level"], 0.95);
    assert!(i["denominator"]["source"]
        .as_str()
        .unwrap()
        .contains("85272NED"));
    let sections = i["sections"].as_array().unwrap();
    assert!(sections.len() >= 19, "{}", sections.len());
    let total = &i["total"];
    let n = total["notifications"].as_f64().unwrap();
    let workforce = total["workforce"].as_f64().unwrap();
    assert!((workforce - 9_371_000.0).abs() < 1.0, "{workforce}");
    let rate = total["rate_per_100k"].as_f64().unwrap();
    assert!((rate - n / workforce * 100_000.0).abs() < 1e-9);
    assert!(total["ci_lower"].as_f64().unwrap() < rate);
    assert!(total["ci_upper"].as_f64().unwrap() > rate);
    // a fifth of national volume (about 4,000 a year) over 9.6 million workers: about 8
    assert!(rate > 3.0 && rate < 20.0, "{rate}");
    for s in sections {
        match s["rate_status"].as_str().unwrap() {
            "published" => {
                let (lo, r, hi) = (
                    s["ci_lower"].as_f64().unwrap(),
                    s["rate_per_100k"].as_f64().unwrap(),
                    s["ci_upper"].as_f64().unwrap(),
                );
                assert!(lo <= r && r < hi, "{s}");
            }
            "suppressed" => {
                assert!(
                    s["rate_per_100k"].is_null() && s["notifications"].is_null(),
                    "{s}"
                );
                assert_eq!(s["suppressed"], true);
            }
            "no_denominator" => assert!(s["workforce"].is_null(), "{s}"),
            other => panic!("unexpected status {other}: {s}"),
        }
    }
    // a sector fund: its sections; healthcare (Q) has a denominator, sector code 1071 (in
    // section C) does not, since the CBS table is by section
    let fund = json("/api/v1/stats/incidence?from=2022-01&to=2023-12", &f.fund).await;
    assert_eq!(fund["months"], 24);
    let rows: BTreeMap<&str, &Value> = fund["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["sbi_section"].as_str().unwrap(), r))
        .collect();
    assert!(rows.keys().all(|s| *s == "Q" || *s == "C"), "{rows:?}");
    let healthcare = rows["Q"];
    assert!(
        ["published", "suppressed"].contains(&healthcare["rate_status"].as_str().unwrap()),
        "{healthcare}"
    );
    assert!((healthcare["workforce"].as_f64().unwrap() - 1_618_000.0).abs() < 1.0);
    if let Some(bakeries) = rows.get("C") {
        assert!(bakeries["workforce"].is_null());
        assert!(
            ["no_denominator", "suppressed"].contains(&bakeries["rate_status"].as_str().unwrap())
        );
    }
    assert_eq!(fund["total"]["rate_status"], "no_denominator");
}

#[tokio::test]
async fn bad_parameters_are_named_with_value_and_rule() {
    let f = fixture();
    for (uri, parameter, value, rule) in [
        (
            "/api/v1/stats/counts?group_by=year,colour",
            "group_by",
            "colour",
            "known_dimension",
        ),
        (
            "/api/v1/stats/counts?from=2022-13",
            "from",
            "2022-13",
            "period_format",
        ),
        (
            "/api/v1/stats/counts?format=xml",
            "format",
            "xml",
            "json_or_csv",
        ),
        (
            "/api/v1/stats/counts?colour=red",
            "colour",
            "red",
            "known_parameter",
        ),
        (
            "/api/v1/stats/counts?group_by=month,sector,diagnosis,sex",
            "group_by",
            "month,sector,diagnosis,sex",
            "max_tables",
        ),
        (
            "/api/v1/stats/trend?interval=week",
            "interval",
            "week",
            "month_quarter_or_year",
        ),
        (
            "/api/v1/stats/trend?year=2022",
            "year",
            "2022",
            "no_period_filter",
        ),
        (
            "/api/v1/stats/trend?from=2023-01&to=2022-01",
            "to",
            "2022-01",
            "from_not_after_to",
        ),
        (
            "/api/v1/stats/incidence",
            "year",
            "(missing)",
            "period_required",
        ),
        (
            "/api/v1/stats/incidence?year=20x3",
            "year",
            "20x3",
            "year_format",
        ),
        (
            "/api/v1/stats/incidence?year=2023&from=2023-01&to=2023-06",
            "year",
            "2023",
            "year_or_range",
        ),
        (
            "/api/v1/stats/incidence?year=2023&sector=1071",
            "sector",
            "1071",
            "filter_not_allowed",
        ),
    ] {
        let (status, body, content_type) = get(uri, Some(&f.analyst)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
        let p: Value = serde_json::from_str(&body).unwrap();
        let v = &p["violations"][0];
        assert_eq!(
            (
                v["parameter"].as_str(),
                v["value"].as_str(),
                v["rule"].as_str()
            ),
            (Some(parameter), Some(value), Some(rule)),
            "{uri}: {body}"
        );
        assert!(p["detail"].as_str().unwrap().contains(parameter));
    }
}

#[tokio::test]
async fn roles_and_tokens() {
    let f = fixture();
    for route in [
        "/api/v1/stats/counts",
        "/api/v1/stats/trend",
        "/api/v1/stats/incidence?year=2023",
    ] {
        assert_eq!(get(route, None).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(get(route, Some("nope")).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(get(route, Some(&f.reporter)).await.0, StatusCode::FORBIDDEN);
        assert_eq!(get(route, Some(&f.fund)).await.0, StatusCode::OK);
    }
    // reporter-level totals stay with analysts
    for route in ["/api/v1/stats/summary", "/api/v1/stats/reporters"] {
        assert_eq!(get(route, None).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(get(route, Some(&f.fund)).await.0, StatusCode::FORBIDDEN);
        assert_eq!(get(route, Some(&f.reporter)).await.0, StatusCode::FORBIDDEN);
        assert_eq!(get(route, Some(&f.analyst)).await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn reporters_per_year_concentration_and_silent_services() {
    let f = fixture();
    let a = json("/api/v1/stats/reporters", &f.analyst).await;
    assert_eq!(a["interval"], "year");
    let periods = a["periods"].as_array().unwrap();
    let labels: Vec<&str> = periods
        .iter()
        .map(|p| p["period"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["2022", "2023"]);
    // the notifications of each year are the published counts' exact totals, and the distinct
    // reporters of each year are those of the per-reporter count table (another table of the
    // store, kept by the processor with every count)
    let by_reporter = f
        .store
        .exact_counts_by_reporter(&CountQuery {
            group_by: vec![Dimension::Year],
            ..CountQuery::default()
        })
        .unwrap();
    let exact_year = f
        .store
        .counts_unsuppressed(&CountQuery {
            group_by: vec![Dimension::Year],
            ..CountQuery::default()
        })
        .unwrap();
    for p in periods {
        let year = p["period"].as_str().unwrap();
        let mut per_reporter: Vec<i64> = by_reporter
            .iter()
            .filter(|(k, _, _)| k["year"] == year)
            .map(|(_, _, n)| *n)
            .collect();
        per_reporter.sort_unstable_by(|a, b| b.cmp(a));
        let total: i64 = per_reporter.iter().sum();
        let exact = exact_year
            .iter()
            .find(|(k, _)| k["year"] == year)
            .unwrap()
            .1;
        assert_eq!(p["notifications"].as_i64().unwrap(), exact, "{p}");
        assert_eq!(total, exact);
        assert_eq!(
            p["reporters"].as_i64().unwrap(),
            per_reporter.len() as i64,
            "{p}"
        );
        let top = per_reporter.len().div_ceil(10);
        assert_eq!(p["top_decile_reporters"].as_i64().unwrap(), top as i64);
        let share = per_reporter[..top].iter().sum::<i64>() as f64 / total as f64;
        assert!(
            (p["top_decile_share"].as_f64().unwrap() - share).abs() < 1e-12,
            "{p}"
        );
    }
    // doctors who file zero reports send them in months without a case
    let months = json("/api/v1/stats/reporters?interval=month", &f.analyst).await;
    let months = months["periods"].as_array().unwrap();
    assert_eq!(months.len(), 24);
    assert!(months
        .iter()
        .all(|p| p["zero_report_only"].as_i64().unwrap() > 0));
    // two years of data, a one-year recent window after a one-year baseline: doctors who
    // reported in 2022 and not in 2023 make their services appear
    let a = json(
        "/api/v1/stats/reporters?silent_months=12&baseline_months=12&interval=quarter",
        &f.analyst,
    )
    .await;
    assert_eq!(a["periods"].as_array().unwrap().len(), 8);
    assert_eq!(
        a["silent_window"],
        serde_json::json!(["2023-01", "2023-12"])
    );
    assert_eq!(
        a["baseline_window"],
        serde_json::json!(["2022-01", "2022-12"])
    );
    let silent = a["silent_services"].as_array().unwrap();
    assert!(!silent.is_empty());
    let mut seen_partial = false;
    for s in silent {
        let (before, gone) = (
            s["reporters_before"].as_i64().unwrap(),
            s["silent_reporters"].as_i64().unwrap(),
        );
        assert!(gone >= 1 && gone <= before, "{s}");
        if s["all_silent"] == true {
            assert_eq!(gone, before, "{s}");
            assert!(s["last_active"].as_str().unwrap() < "2023-01", "{s}");
            assert!(
                !seen_partial,
                "services whose reporters all went silent come first"
            );
        } else {
            seen_partial = true;
        }
    }
    // no reporter pseudonym ever leaves, in JSON or CSV
    let activity = f.store.reporter_activity().unwrap();
    assert!(activity.iter().any(|r| r.zero_reports > 0));
    let (_, json_body, _) = get("/api/v1/stats/reporters?interval=month", Some(&f.analyst)).await;
    let (status, csv, content_type) =
        get("/api/v1/stats/reporters?format=csv", Some(&f.analyst)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.unwrap().starts_with("text/csv"));
    assert!(csv.starts_with(
        "period,reporters,zero_report_only,notifications,top_decile_reporters,top_decile_share,share_of_registered\n2022,"
    ), "{csv}");
    let (_, services_csv, _) = get(
        "/api/v1/stats/reporters?format=csv&table=silent_services",
        Some(&f.analyst),
    )
    .await;
    assert!(services_csv
        .starts_with("service,reporters_before,silent_reporters,all_silent,last_active\n"));
    for r in &activity {
        for body in [&json_body, &csv, &services_csv] {
            assert!(
                !body.contains(&r.reporter),
                "pseudonym {} published",
                r.reporter
            );
        }
    }
    // registered reporters: the fixture's doctor (who filed nothing) and one who reported in
    // 2023 but not in 2022
    let filed_2023_only = activity
        .iter()
        .filter(|a| a.period.starts_with("2023") && a.notifications > 0)
        .map(|a| a.reporter.clone())
        .find(|r| {
            !activity
                .iter()
                .any(|a| &a.reporter == r && a.period.starts_with("2022") && a.notifications > 0)
        })
        .unwrap();
    let registered = f
        .tokens
        .create(
            &Principal::Reporter {
                pseudonym: ReporterPseudonym::from_hex(&filed_2023_only).unwrap(),
                affiliation: Affiliation::Service("AD0002".into()),
            },
            "doctor reporting in 2023",
        )
        .unwrap();
    let years = json("/api/v1/stats/reporters", &f.analyst).await;
    assert_eq!(years["registered_reporters"], 2);
    assert_eq!(years["periods"][0]["share_of_registered"], 0.0);
    assert_eq!(years["periods"][1]["share_of_registered"], 0.5);
    f.tokens.revoke(&registered).unwrap();
    let years = json("/api/v1/stats/reporters", &f.analyst).await;
    assert_eq!(years["registered_reporters"], 1);
    // bad parameters name the parameter, value and rule
    let (status, body, _) = get("/api/v1/stats/reporters?silent_months=0", Some(&f.analyst)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["violations"][0]["parameter"], "silent_months");
    assert_eq!(problem["violations"][0]["rule"], "window_months");
}

#[test]
fn openapi_describes_every_route_and_answer() {
    let spec = serde_json::to_value(QueryApi::openapi()).unwrap();
    for path in [
        "/api/v1/stats/summary",
        "/api/v1/stats/counts",
        "/api/v1/stats/trend",
        "/api/v1/stats/incidence",
        "/api/v1/stats/reporters",
        "/api/v1/signals",
    ] {
        let responses = &spec["paths"][path]["get"]["responses"];
        let mut codes = vec!["200", "401", "403", "429", "503"];
        if path != "/api/v1/stats/summary" {
            codes.push("400");
        }
        for code in codes {
            assert!(responses[code].is_object(), "{path} {code}");
        }
        if path != "/api/v1/stats/summary" && path != "/api/v1/signals" {
            // format=csv answers text/csv: documented, so clients (and schemathesis) expect it
            let content = &responses["200"]["content"];
            assert!(content["application/json"].is_object(), "{path}");
            assert!(content["text/csv"].is_object(), "{path}");
        }
    }
    for schema in [
        "CountsAnswer",
        "TrendAnswer",
        "TrendPoint",
        "IncidenceAnswer",
        "IncidenceRow",
        "RateStatus",
        "ReportersAnswer",
        "ReporterPeriod",
        "SilentService",
        "SignalList",
        "SignalDetail",
        "ReviewChange",
        "SignalRecord",
        "AuditEntry",
        "Problem",
    ] {
        assert!(
            spec["components"]["schemas"][schema].is_object(),
            "{schema}"
        );
    }
}

async fn send(method: &str, uri: &str, token: &str, body: &str) -> (StatusCode, Value) {
    let response = fixture()
        .app
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn signals_are_listed_filtered_reviewed_and_audited() {
    let f = fixture();
    let raised = |id: &str, kind: &str, section: &str| ods_store::SignalRecord {
        id: id.to_string(),
        kind: kind.to_string(),
        subject: BTreeMap::from([("sbi_section".to_string(), section.to_string())]),
        period: "2023".into(),
        numbers: BTreeMap::from([
            ("observed".to_string(), 60.0),
            ("expected".to_string(), 287.0),
        ]),
        method: "sir_funnel".into(),
        explanation: "60 notifications where about 287 were expected".into(),
        status: ods_store::SignalStatus::New,
        note: None,
        detected_at_ms: 1_700_000_000_000,
        updated_at_ms: 1_700_000_000_000,
        revision: 1,
    };
    f.store
        .record_signals(&[
            raised("api-under-f", "under_reporting", "F"),
            raised("api-rise-c", "aberration", "C"),
        ])
        .unwrap();

    let list = json("/api/v1/signals?kind=under_reporting&sector=F", &f.analyst).await;
    let ids: Vec<&str> = list["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"api-under-f"), "{list}");
    assert!(!ids.contains(&"api-rise-c"), "{list}");
    assert_eq!(list["count"].as_u64().unwrap() as usize, ids.len());
    assert_eq!(list["signals"][0]["status"], "new");

    // review: new -> under_review -> confirmed, each change audited with the reviewer
    let uri = "/api/v1/signals/api-under-f";
    let (status, body) = send(
        "PATCH",
        uri,
        &f.analyst,
        r#"{"status":"under_review","revision":1}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["signal"]["status"], "under_review");
    assert_eq!(body["signal"]["revision"], 2);
    // a stale revision, a jump and a missing note are refused, naming the rule
    let (status, body) = send(
        "PATCH",
        uri,
        &f.analyst,
        r#"{"status":"confirmed","note":"x","revision":1}"#,
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert_eq!(body["violations"][0]["rule"], "current_revision");
    let (status, body) = send("PATCH", uri, &f.analyst, r#"{"status":"confirmed"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["violations"][0]["rule"], "note_required");
    let (status, body) = send("PATCH", uri, &f.analyst, r#"{"status":"new"}"#).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("allowed: confirmed, dismissed"),
        "{body}"
    );
    let (status, body) = send("PATCH", uri, &f.analyst, r#"{"status":"closed"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = send(
        "PATCH",
        uri,
        &f.analyst,
        r#"{"status":"confirmed","reason":"x"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = send(
        "PATCH",
        uri,
        &f.analyst,
        r#"{"status":"confirmed","note":"construction fund informed","revision":2}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let detail = json(uri, &f.analyst).await;
    assert_eq!(detail["signal"]["status"], "confirmed");
    assert_eq!(detail["signal"]["note"], "construction fund informed");
    let audit = detail["audit"].as_array().unwrap();
    assert_eq!(audit.len(), 2, "{detail}");
    assert_eq!(audit[0]["from_status"], "new");
    assert_eq!(audit[1]["to_status"], "confirmed");
    // the reviewer is named by token id, never by the token itself
    let actor = audit[1]["actor"].as_str().unwrap();
    assert!(
        !actor.is_empty() && !f.analyst.ends_with(actor) && f.analyst.contains(actor),
        "{actor}"
    );
    let (status, _) = send(
        "PATCH",
        uri,
        &f.analyst,
        r#"{"status":"dismissed","note":"x"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // confirmed ones are found by status; unknown ids and filters are named
    let confirmed = json("/api/v1/signals?status=confirmed", &f.analyst).await;
    assert!(confirmed["signals"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "confirmed"));
    assert_eq!(
        get("/api/v1/signals/nope", Some(&f.analyst)).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, body, _) = get("/api/v1/signals?kind=rumour", Some(&f.analyst)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("known_kind"), "{body}");

    // a sweep on demand records what it raises; sweeping again adds nothing new
    let (status, first) = send(
        "POST",
        "/api/v1/signals/sweep?as_of=2023-12",
        &f.analyst,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["as_of"], "2023-12");
    let (_, again) = send(
        "POST",
        "/api/v1/signals/sweep?as_of=2023-12",
        &f.analyst,
        "",
    )
    .await;
    assert_eq!(again["raised"], first["raised"]);
    assert_eq!(again["new"], 0);
    for id in first["raised"].as_array().unwrap() {
        let id = id.as_str().unwrap();
        assert_eq!(
            get(&format!("/api/v1/signals/{id}"), Some(&f.analyst))
                .await
                .0,
            StatusCode::OK
        );
    }
    let (status, _) = send(
        "POST",
        "/api/v1/signals/sweep?as_of=2023-13",
        &f.analyst,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = send(
        "POST",
        "/api/v1/signals/sweep?as_of=2999-01",
        &f.analyst,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["violations"][0]["rule"], "complete_month", "{body}");

    // sector funds and reporters do not see signals
    for token in [&f.fund, &f.reporter] {
        assert_eq!(
            get("/api/v1/signals", Some(token)).await.0,
            StatusCode::FORBIDDEN
        );
        let (status, _) = send("PATCH", uri, token, r#"{"status":"dismissed","note":"x"}"#).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
