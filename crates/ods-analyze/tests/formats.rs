//! CSV and JSON outputs agree (same rows, keys, nulls, flags, text and numbers); the README example is reproduced; names and defaults are
//! consistent.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::{run_text, series_csv, Table};
use ods_analyze::{all_option_names, analyze, Format, Method, Options};

/// Compare a CSV output with a JSON output cell by cell: empty = null, numbers equal exactly
/// (both are written in shortest round-trip form), flags and text identical, keys in column
/// order.
fn assert_csv_json_agree(what: &str, csv_text: &str, json_text: &str) {
    let csv = Table::parse(csv_text);
    let json: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(json_text).unwrap();
    assert_eq!(csv.rows.len(), json.len(), "{what}: number of rows");
    assert!(!json.is_empty(), "{what}: no rows");
    // keys appear in column order in the text of the first object
    let first_line = json_text.lines().nth(1).unwrap();
    let mut last = 0;
    for c in &csv.header {
        let key = format!("{}:", serde_json::to_string(c).unwrap());
        let pos = first_line[last..]
            .find(&key)
            .unwrap_or_else(|| panic!("{what}: key {key} missing or out of order"));
        last += pos + key.len();
    }
    for (i, (row, obj)) in csv.rows.iter().zip(&json).enumerate() {
        assert_eq!(
            obj.len(),
            csv.header.len(),
            "{what} row {i}: number of keys"
        );
        for (col, cell) in csv.header.iter().zip(row) {
            let v = &obj[col];
            let ok = match v {
                serde_json::Value::Null => cell.is_empty(),
                serde_json::Value::Bool(b) => cell == &b.to_string(),
                // serde_json's default float parser (no `float_roundtrip` feature) may be off
                // by an ulp when reading back, so allow a few ulps.
                serde_json::Value::Number(n) => match (cell.parse::<f64>(), n.as_f64()) {
                    (Ok(a), Some(b)) => a == b || (a - b).abs() <= 4.0 * f64::EPSILON * a.abs(),
                    _ => false,
                },
                serde_json::Value::String(s) => cell == s,
                _ => false,
            };
            assert!(ok, "{what} row {i} column {col}: CSV {cell:?} vs JSON {v}");
        }
    }
}

fn both(method: Method, opts: &[(&str, &str)], input: &str) -> (String, String) {
    let o = Options::from_pairs(opts.iter().copied()).unwrap();
    (
        run_text(method, &o, input, Format::Csv),
        run_text(method, &o, input, Format::Json),
    )
}

#[test]
fn json_and_csv_agree() {
    let tables = "label,a,b,c,d\n\"welders, asthma\",12,188,40,9760\nnone,5,0,10,300\n";
    type Case<'a> = (Method, Vec<(&'a str, &'a str)>, String);
    let cases: Vec<Case> = vec![
        (Method::EarsC3, vec![], series_csv("agona")),
        (Method::Farrington, vec![("b", "3")], series_csv("monthly")),
        (
            Method::FarringtonFlexible,
            vec![
                ("no-periods", "10"),
                ("past-weeks-not-included", "26"),
                ("threshold-method", "nbPlugin"),
            ],
            series_csv("sparse"),
        ),
        (Method::Cusum, vec![("range", "213:")], series_csv("agona")),
        (Method::Prr, vec![], tables.to_string()),
        (Method::Ror, vec![], tables.to_string()),
        (Method::Ic, vec![("level", "0.9")], tables.to_string()),
        (
            Method::PoissonCi,
            vec![],
            "count,population\n0,100\n7,0\n12345,2.5e6\n".to_string(),
        ),
        (
            Method::Sir,
            vec![],
            "observed,expected\n3,1.5\n0,0\n".to_string(),
        ),
        (
            Method::Chapman,
            vec![],
            "n1,n2,m\n120,90,40\n0,0,0\n".to_string(),
        ),
        (
            Method::Ebgm,
            vec![("prior", "0.2,0.1,2,4,0.3333")],
            "id,var1,var2\nR1,X,D\nR2,X,D\nR3,Y,D\nR4,Y,E\nR5,X,E\n".to_string(),
        ),
        (
            Method::Prr,
            vec![],
            "report_id,exposure,diagnosis\nR1,X,D\nR2,X,D\nR3,Y,D\nR4,Y,E\nR5,X,E\n".to_string(),
        ),
    ];
    for (method, opts, input) in cases {
        let (c, j) = both(method, &opts, &input);
        assert_csv_json_agree(&format!("{method} {opts:?}"), &c, &j);
    }
}

/// The example of the README, byte for byte.
#[test]
fn readme_example() {
    let input = "date,count\n2024-01-01,3\n2024-01-08,2\n2024-01-15,4\n2024-01-22,3\n\
                 2024-01-29,2\n2024-02-05,12\n";
    let o = Options::from_pairs([("baseline", "3")]).unwrap();
    let csv = run_text(Method::EarsC1, &o, input, Format::Csv);
    assert_eq!(
        csv,
        "date,count,upperbound,alarm,expected,sigma\n\
         2024-01-01,3,,,,\n\
         2024-01-08,2,,,,\n\
         2024-01-15,4,,,,\n\
         2024-01-22,3,6.090232306167813,false,3,1\n\
         2024-01-29,2,6.090232306167813,false,3,1\n\
         2024-02-05,12,6.090232306167813,true,3,1\n"
    );
    let json = run_text(Method::EarsC1, &o, input, Format::Json);
    assert_eq!(
        json.lines().nth(1).unwrap(),
        r#"{"date":"2024-01-01","count":3,"upperbound":null,"alarm":null,"expected":null,"sigma":null},"#
    );
    assert_eq!(
        json.lines().nth(6).unwrap(),
        r#"{"date":"2024-02-05","count":12,"upperbound":6.090232306167813,"alarm":true,"expected":3.0,"sigma":1.0}"#
    );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(&csv),
        "README example output is out of date"
    );
}

#[test]
fn method_names_round_trip() {
    assert_eq!(Method::ALL.len(), Method::NAMES.len());
    for (m, n) in Method::ALL.iter().zip(Method::NAMES) {
        assert_eq!(m.name(), n);
        assert_eq!(m.to_string(), n);
        assert_eq!(n.parse::<Method>().unwrap(), *m);
        assert_eq!(n.to_uppercase().parse::<Method>().unwrap(), *m);
        assert!(!m.description().is_empty() && !m.input_help().is_empty());
    }
    assert_eq!("json".parse::<Format>().unwrap(), Format::Json);
    assert_eq!("CSV".parse::<Format>().unwrap(), Format::Csv);
    assert_eq!(Format::default(), Format::Csv);
}

/// Every option with a literal default gives exactly the output of not setting it: the
/// documented defaults are the ones used (R's, via ods-stats).
#[test]
fn documented_defaults_are_the_defaults() {
    let series = series_csv("agona");
    let tables = "a,b,c,d\n12,188,40,9760\n3,50,20,5000\n";
    let non_literal = ["range", "m", "past-weeks-not-included", "prior"];
    for method in Method::ALL {
        let specs = method.options();
        let mut names: Vec<&str> = specs.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), specs.len(), "{method}: duplicate option");
        let input = if method.is_series() {
            series.as_str()
        } else if method == Method::PoissonCi {
            "observed,population\n7,12000\n"
        } else if method == Method::Sir {
            "observed,expected\n7,3.2\n"
        } else if method == Method::Chapman {
            "n1,n2,m\n120,90,40\n"
        } else if method == Method::Ebgm {
            "id,var1,var2,strat\nR1,X,D,a\nR2,X,D,b\nR3,Y,D,a\nR4,Y,E,b\nR5,X,E,a\nR6,Z,E,a\n"
        } else {
            tables
        };
        let base: Vec<(&str, &str)> = if method == Method::Cusum {
            vec![("range", "200:")]
        } else {
            vec![]
        };
        let plain = analyze(
            method,
            &Options::from_pairs(base.iter().copied()).unwrap(),
            input.as_bytes(),
        )
        .unwrap();
        let mut explicit = Options::from_pairs(base.iter().copied()).unwrap();
        for s in specs.iter().filter(|s| !non_literal.contains(&s.name)) {
            let value = if s.name == "alpha" && method == Method::Cusum {
                continue; // only valid with trans=pearsonNegBin
            } else {
                s.default
            };
            explicit.set(s.name, value).unwrap();
        }
        let with_defaults = analyze(method, &explicit, input.as_bytes())
            .unwrap_or_else(|e| panic!("{method}: documented defaults rejected: {e}"));
        assert_eq!(plain, with_defaults, "{method}");
    }
    // and a non-default value does change the result (the comparison above can fail)
    let changed = analyze(
        Method::EarsC1,
        &Options::from_pairs([("alpha", "0.05")]).unwrap(),
        series.as_bytes(),
    )
    .unwrap();
    let plain = analyze(Method::EarsC1, &Options::new(), series.as_bytes()).unwrap();
    assert_ne!(changed, plain);
}

#[test]
fn option_names_accept_r_spellings() {
    let mut o = Options::new();
    o.set("pastWeeksNotIncluded", "26").unwrap();
    o.set("--threshold_method", "nbPlugin").unwrap();
    o.set("past-weeks-not-included", "20").unwrap(); // replaces the first value
    assert_eq!(o.get("past_weeks_not_included"), Some("20"));
    assert_eq!(
        o.iter().collect::<Vec<_>>(),
        [
            ("past-weeks-not-included", "20"),
            ("threshold-method", "nbPlugin")
        ]
    );
    o.validate(Method::FarringtonFlexible).unwrap();
    assert!(all_option_names().contains(&"no-periods"));
}

/// Rows a method does not evaluate stay in the output with empty results; a monthly series
/// gets frequency 12 (b = 3 years needs 3*12 - 3 = 33 rows before the first evaluated row).
#[test]
fn unevaluated_rows_are_empty_and_monthly_frequency_is_detected() {
    let out = analyze(
        Method::Farrington,
        &Options::from_pairs([("b", "3")]).unwrap(),
        series_csv("monthly").as_bytes(),
    )
    .unwrap();
    let ub = out.column("upperbound").unwrap();
    let first = out
        .rows
        .iter()
        .position(|r| r[ub].as_f64().is_some())
        .unwrap();
    assert_eq!(first, 3 * 12 - 3 - 1); // R's one-based freq*b - w
    assert!(out.rows[..first].iter().all(|r| r[out.columns.len() - 9..]
        .iter()
        .all(|v| *v == ods_analyze::Value::Null)));
}
