//! Error messages name the line, column, value and rule (or option, value and rule), nothing is
//! written on error, and no input makes the crate panic.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::run_err;
use ods_analyze::{run, AnalyzeError, Format, Method, Options};

/// Twelve weeks of counts, enough for EARS C1 with the default baseline of 7.
fn weekly(counts: &[&str]) -> String {
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let mut s = String::from("date,count\n");
    for (i, c) in counts.iter().enumerate() {
        s.push_str(&format!(
            "{},{c}\n",
            start + chrono::Duration::days(7 * i as i64)
        ));
    }
    s
}

const TWELVE: [&str; 12] = ["1", "2", "0", "3", "1", "2", "2", "1", "0", "4", "2", "9"];

#[test]
fn good_series_runs() {
    let t = common::run_csv(Method::EarsC1, &[], &weekly(&TWELVE));
    assert_eq!(t.rows.len(), 12);
}

#[test]
fn negative_count_names_line_column_value_and_rule() {
    let mut c = TWELVE;
    c[5] = "-3"; // data row 6 = line 7
    let msg = run_err(Method::EarsC1, &[], &weekly(&c));
    assert_eq!(
        msg,
        "line 7, column count: \"-3\" is not a non-negative integer"
    );
}

#[test]
fn non_integer_and_empty_counts() {
    let mut c = TWELVE;
    c[2] = "2.5";
    let msg = run_err(Method::Farrington, &[], &weekly(&c));
    assert_eq!(
        msg,
        "line 4, column count: \"2.5\" is not a non-negative integer"
    );
    c[2] = "abc";
    let msg = run_err(Method::Cusum, &[("range", "5:")], &weekly(&c));
    assert_eq!(
        msg,
        "line 4, column count: \"abc\" is not a non-negative integer"
    );
    c[2] = "";
    let msg = run_err(Method::EarsC2, &[], &weekly(&c));
    assert!(
        msg.starts_with("line 4, column count: \"\" is empty"),
        "{msg}"
    );
    assert!(msg.contains("write 0"), "{msg}");
}

#[test]
fn bad_header_says_what_is_missing_and_what_is_expected() {
    let msg = run_err(Method::EarsC1, &[], "day,count\n2024-01-01,1\n");
    assert!(msg.starts_with("line 1: header \"day,count\""), "{msg}");
    assert!(msg.contains("missing column(s) date"), "{msg}");
    assert!(msg.contains("date,count"), "{msg}");
    let msg = run_err(Method::Prr, &[], "a,b,c\n1,2,3\n");
    assert!(msg.contains("missing column(s) d"), "{msg}");
    let msg = run_err(Method::Ebgm, &[], "x,y\n1,2\n");
    assert!(
        msg.contains("neither the report-level columns report_id,exposure,diagnosis"),
        "{msg}"
    );
    let msg = run_err(Method::Sir, &[], "observed\n3\n");
    assert!(msg.contains("missing column(s) expected"), "{msg}");
    let msg = run_err(Method::Chapman, &[], "n1,n2,m,n1\n1,1,1,1\n");
    assert!(msg.contains("column \"n1\" appears twice"), "{msg}");
    let msg = run_err(Method::Ebgm, &[], "id,var1,var2,ID\nR1,X,D,2\n");
    assert!(msg.contains("column \"ID\" appears twice"), "{msg}");
    let msg = run_err(Method::Prr, &[], "a,b,c,d,prr\n1,2,3,4,5\n");
    assert!(
        msg.contains("input column \"prr\" has the name of an output column"),
        "{msg}"
    );
}

#[test]
fn unsorted_and_duplicate_dates() {
    let input = "date,count\n2024-01-01,1\n2024-01-08,1\n2024-01-15,2\n2024-01-08,0\n";
    let msg = run_err(Method::EarsC1, &[], input);
    assert_eq!(
        msg,
        "line 5, column date: \"2024-01-08\" is not after the previous date 2024-01-15 (line 4); \
         dates must be in ascending order without duplicates"
    );
    let input = "date,count\n2024-01-08,1\n2024-01-01,1\n";
    let msg = run_err(Method::EarsC1, &[], input);
    assert!(
        msg.starts_with("line 3, column date: \"2024-01-01\" is not after"),
        "{msg}"
    );
    let input = "date,count\n2024-01-01,1\n2024-01-01,1\n";
    let msg = run_err(Method::EarsC1, &[], input);
    assert!(
        msg.starts_with("line 3, column date: \"2024-01-01\" is not after"),
        "{msg}"
    );
}

#[test]
fn irregular_spacing_and_gaps() {
    // a missing week
    let input = "date,count\n2024-01-01,1\n2024-01-08,1\n2024-01-15,2\n2024-01-29,0\n";
    let msg = run_err(Method::Farrington, &[], input);
    assert!(
        msg.starts_with(
            "line 5, column date: \"2024-01-29\" is 14 days after the previous date 2024-01-15 \
             (line 4), but the series is weekly (7 days apart) as set by lines 2-3, so 2024-01-22 \
             was expected"
        ),
        "{msg}"
    );
    // first step neither a day, a week nor a month
    let input = "date,count\n2024-01-01,1\n2024-01-11,1\n";
    let msg = run_err(Method::EarsC1, &[], input);
    assert!(
        msg.starts_with("line 3, column date: \"2024-01-11\" is 10 days after the first date"),
        "{msg}"
    );
    assert!(msg.contains("7 days (weekly)"), "{msg}");
    // monthly series that skips a month
    let input = "date,count\n2024-01-01,1\n2024-02-01,1\n2024-04-01,1\n";
    let msg = run_err(Method::EarsC1, &[], input);
    assert!(msg.contains("line 4, column date: \"2024-04-01\""), "{msg}");
    assert!(msg.contains("monthly (same day each month"), "{msg}");
    assert!(msg.contains("so 2024-03-01 was expected"), "{msg}");
    // weekly series that changes weekday
    let input = "date,count\n2024-01-01,1\n2024-01-08,1\n2024-01-16,1\n";
    let msg = run_err(Method::EarsC1, &[], input);
    assert!(msg.contains("is 8 days after the previous date"), "{msg}");
}

#[test]
fn invalid_dates() {
    for bad in ["2024-02-30", "2024-1-08", "08-01-2024", "", "2024/01/08"] {
        let input = format!("date,count\n2024-01-01,1\n{bad},1\n");
        let msg = run_err(Method::EarsC1, &[], &input);
        assert_eq!(
            msg,
            format!("line 3, column date: \"{bad}\" is not a valid ISO date (YYYY-MM-DD)")
        );
    }
}

#[test]
fn option_that_does_not_apply() {
    let msg = run_err(Method::EarsC1, &[("w", "2")], &weekly(&TWELVE));
    assert_eq!(
        msg,
        "option `w` (given as \"2\") does not apply to ears-c1; options of ears-c1: baseline, alpha, min-sigma, range"
    );
    let msg = run_err(Method::Prr, &[("b", "2")], "a,b,c,d\n1,2,3,4\n");
    assert_eq!(
        msg,
        "option `b` (given as \"2\") does not apply to prr; options of prr: level"
    );
    // R spelling is reported under the kebab-case name
    let msg = run_err(Method::Farrington, &[("noPeriods", "4")], &weekly(&TWELVE));
    assert!(
        msg.starts_with("option `no-periods` (given as \"4\") does not apply to farrington"),
        "{msg}"
    );
    // CUSUM's alpha only goes with trans=pearsonNegBin
    let msg = run_err(
        Method::Cusum,
        &[("alpha", "0.2"), ("range", "3:")],
        &weekly(&TWELVE),
    );
    assert!(
        msg.starts_with("option `alpha`: \"0.2\" is not valid"),
        "{msg}"
    );
    assert!(
        msg.contains("only with that trans (trans is standard)"),
        "{msg}"
    );
}

#[test]
fn invalid_option_values() {
    let cases: [(Method, &str, &str, &str); 10] = [
        (
            Method::Farrington,
            "b",
            "abc",
            "must be a whole number >= 1",
        ),
        (Method::Farrington, "b", "0", "must be a whole number >= 1"),
        (
            Method::EarsC1,
            "alpha",
            "1.5",
            "must be a number strictly between 0 and 1",
        ),
        (
            Method::EarsC1,
            "baseline",
            "2",
            "must be a whole number >= 3",
        ),
        (
            Method::Farrington,
            "reweight",
            "maybe",
            "must be true or false",
        ),
        (Method::Farrington, "limit54", "5", "must be `CASES,PERIOD`"),
        (
            Method::FarringtonFlexible,
            "threshold-method",
            "poisson",
            "must be delta, nbPlugin or muan",
        ),
        (
            Method::Cusum,
            "range",
            "0:",
            "\"0\" is neither a row number >= 1 nor an ISO date",
        ),
        (
            Method::PoissonCi,
            "level",
            "95",
            "must be a number strictly between 0 and 1",
        ),
        (Method::Ebgm, "prior", "1,2,3", "must be five numbers"),
    ];
    for (method, name, value, rule) in cases {
        let msg = run_err(method, &[(name, value)], &weekly(&TWELVE));
        let head = format!("option `{name}`: \"{value}\" is not valid: {rule}");
        assert!(
            msg.starts_with(&head),
            "{method} {name}: {msg}\nexpected: {head}"
        );
    }
    let msg = run_err(Method::EarsC1, &[("foo", "1")], &weekly(&TWELVE));
    assert!(
        msg.starts_with("unknown option `foo`; known options: alpha, b, baseline"),
        "{msg}"
    );
}

#[test]
fn range_outside_the_series() {
    let msg = run_err(Method::Cusum, &[("range", "13:")], &weekly(&TWELVE));
    assert_eq!(
        msg,
        "option `range`: \"13:\" is not valid: row 13 is past the last data row (12); rows are \
         numbered from 1"
    );
    let msg = run_err(Method::Cusum, &[("range", "2023-01-02:")], &weekly(&TWELVE));
    assert!(
        msg.contains(
            "2023-01-02 is not a date of the series (which runs from 2024-01-01 to 2024-03-18)"
        ),
        "{msg}"
    );
    let msg = run_err(Method::Cusum, &[("range", "1:")], &weekly(&TWELVE));
    assert!(
        msg.contains("start at row 2 or later, or give --m"),
        "{msg}"
    );
    let msg = run_err(Method::Cusum, &[], &weekly(&TWELVE));
    assert!(msg.starts_with("cusum needs option `range`"), "{msg}");
}

#[test]
fn empty_input_and_no_rows() {
    let msg = run_err(Method::EarsC1, &[], "");
    assert!(
        msg.starts_with("input is empty: expected a CSV header line"),
        "{msg}"
    );
    assert!(msg.contains("`date,count`"), "{msg}");
    let msg = run_err(Method::Prr, &[], "\n\n");
    assert!(msg.starts_with("input is empty"), "{msg}");
    let msg = run_err(Method::EarsC1, &[], "date,count\n");
    assert_eq!(
        msg,
        "input has a header but no data rows; ears-c1 needs at least one row"
    );
}

#[test]
fn malformed_lines() {
    let msg = run_err(Method::Prr, &[], "a,b,c,d\n1,2,3,4\n1,2,3\n");
    assert_eq!(
        msg,
        "line 3: has 3 field(s) but the header (line 1) has 4: a,b,c,d"
    );
    let mut bytes = b"a,b,c,d\n1,2,3,4\n".to_vec();
    bytes.extend_from_slice(b"\xff\xfe,2,3,4\n");
    let mut out = Vec::new();
    let err = run(
        Method::Prr,
        &Options::new(),
        bytes.as_slice(),
        Format::Csv,
        &mut out,
    )
    .unwrap_err();
    assert!(
        matches!(err, AnalyzeError::Malformed { line: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("not valid UTF-8"), "{err}");
}

#[test]
fn row_level_rules() {
    let msg = run_err(Method::Chapman, &[], "n1,n2,m\n10,20,5\n10,20,12\n");
    assert_eq!(
        msg,
        "line 3, column m: \"12\" is larger than n1 = 10 on this line; the overlap m cannot exceed \
         either source count"
    );
    let msg = run_err(Method::Sir, &[], "observed,expected\n3,-1\n");
    assert_eq!(
        msg,
        "line 2, column expected: \"-1\" is not a finite number >= 0"
    );
    let msg = run_err(
        Method::Ebgm,
        &[],
        "report_id,exposure,diagnosis\nR1,X,D\n,X,D\n",
    );
    assert_eq!(
        msg,
        "line 3, column report_id: \"\" is empty; every row needs a report id"
    );
    let msg = run_err(Method::Ebgm, &[], "N,E\n3,0\n");
    assert_eq!(msg, "line 2, column E: \"0\" is not a finite number > 0");
    let msg = run_err(
        Method::Ebgm,
        &[("stratify", "true")],
        "id,var1,var2\nR1,X,D\n",
    );
    assert!(
        msg.contains("needs a `stratum` (or openEBGM `strat`) column"),
        "{msg}"
    );
}

#[test]
fn series_too_short_is_a_method_error() {
    let msg = run_err(Method::Farrington, &[], &weekly(&TWELVE));
    assert!(msg.starts_with("farrington: series too short"), "{msg}");
    assert!(msg.contains("got 12"), "{msg}");
    assert!(msg.contains("lower `b`"), "{msg}");
}

#[test]
fn unknown_method_and_format() {
    let err = "earsc1".parse::<Method>().unwrap_err().to_string();
    assert!(
        err.starts_with("unknown method \"earsc1\"; methods: ears-c1, ears-c2"),
        "{err}"
    );
    let err = "xml".parse::<Format>().unwrap_err().to_string();
    assert_eq!(err, "unknown output format \"xml\"; use csv or json");
}

/// No input makes any method panic: every odd input gives Ok or a clean error.
#[test]
fn never_panics_on_odd_input() {
    let inputs: Vec<String> = vec![
        String::new(),
        "\n".into(),
        ",,,\n".into(),
        "\"unterminated\n".into(),
        "date,count\n,\n".into(),
        "date,count\n2024-01-01,1\n".into(),
        "date,count\n2024-01-01,99999999999999999999999\n".into(),
        "date,count\n2024-01-01,1e400\n2024-01-08,1\n".into(),
        "date,count\n9999-12-31,1\n".into(),
        "date,count\n9999-12-25,1\n9999-12-31,1\n".into(),
        "date,count\n2024-01-31,1\n2024-02-29,1\n2024-03-31,1\n".into(),
        weekly(&["0"; 400]),
        weekly(&["1000000"; 300]),
        "a,b,c,d\n0,0,0,0\n18446744073709551615,18446744073709551615,1,1\n".into(),
        "n1,n2,m\n0,0,0\n18446744073709551615,18446744073709551615,0\n".into(),
        "observed,population\n0,0\n18446744073709551615,1e-300\n".into(),
        "observed,expected\n0,0\n5,1e-300\n".into(),
        "id,var1,var2\nR1,X,D\n".into(),
        "N,E\n0,1\n".into(),
        "N,E\n5,1e-300\n1000000,1\n".into(),
    ];
    let option_sets: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("range", "2:")],
        vec![("m", "0"), ("range", "1:")],
    ];
    for method in Method::ALL {
        for input in &inputs {
            for opts in &option_sets {
                let Ok(o) = Options::from_pairs(opts.iter().copied()) else {
                    continue;
                };
                let r = std::panic::catch_unwind(|| {
                    let out = ods_analyze::analyze(method, &o, input.as_bytes());
                    if let Ok(out) = out {
                        for format in [Format::Csv, Format::Json] {
                            out.write(format, Vec::new()).unwrap();
                        }
                    }
                });
                assert!(r.is_ok(), "{method} panicked on {input:?} with {opts:?}");
            }
        }
    }
}
