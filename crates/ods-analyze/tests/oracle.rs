//! End-to-end comparison with the reference values committed for ods-stats
//! (`crates/ods-stats/tests/oracle/`: R 4.2.2, surveillance 1.20.3, and base-R implementations
//! of the openEBGM formulas; see that directory's `make_fixtures.R`).
//!
//! Every test goes through the public entry point [`ods_analyze::run`]: the fixture data are
//! written as the CSV an analyst would give (`date,count`, `a,b,c,d`, openEBGM raw rows), options
//! are passed as strings as on the command line (the fixture's own text, e.g. `alpha` =
//! `0.050000000000000003`), and the CSV output is parsed back. Tolerance: 1e-4 relative for
//! continuous values, exact for alarms and integer-valued bounds.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::{assert_opt_close, close, run_csv, series_csv, Table};
use ods_analyze::Method;

/// Our output rows that R evaluated must match; all other rows must have empty results.
fn check_series_rows(
    key: &[String],
    ours: &Table,
    r: &Table,
    rows: &[Vec<String>],
    mut check: impl FnMut(&str, &[String], &[String]),
) {
    let mut evaluated = std::collections::BTreeSet::new();
    for rr in rows {
        let i: usize = r.get(rr, "index").parse().unwrap();
        evaluated.insert(i);
        let our = &ours.rows[i];
        assert_eq!(
            ours.get(our, "count"),
            r.get(rr, "observed"),
            "{key:?} observed@{i}"
        );
        check(&format!("{key:?}@{i}"), our, rr);
    }
    for (i, our) in ours.rows.iter().enumerate() {
        if !evaluated.contains(&i) {
            assert_eq!(
                ours.get(our, "upperbound"),
                "",
                "{key:?} row {i} not evaluated by R"
            );
            assert_eq!(
                ours.get(our, "alarm"),
                "",
                "{key:?} row {i} not evaluated by R"
            );
        }
    }
}

#[test]
fn ears_matches_r_surveillance() {
    let r = Table::read("ears.csv");
    let mut n = 0;
    for (key, rows) in r.group(&["series", "method", "baseline", "alpha", "min_sigma"]) {
        let method: Method = format!("ears-{}", key[1].to_lowercase()).parse().unwrap();
        let mut opts = vec![
            ("baseline", key[2].as_str()),
            ("min-sigma", key[4].as_str()),
        ];
        if key[3] != "NA" {
            opts.push(("alpha", key[3].as_str()));
        }
        let ours = run_csv(method, &opts, &series_csv(&key[0]));
        check_series_rows(&key, &ours, &r, &rows, |w, our, rr| {
            assert_opt_close(w, ours.num(our, "upperbound"), r.num(rr, "upperbound"));
            assert_eq!(ours.flag(our, "alarm"), r.flag(rr, "alarm"), "{w} alarm");
            n += 1;
        });
    }
    assert!(n > 6000, "{n}");
}

#[test]
fn farrington_matches_r_surveillance() {
    let r = Table::read("farrington.csv");
    let mut n = 0;
    let keys = [
        "series",
        "b",
        "w",
        "reweight",
        "trend",
        "powertrans",
        "alpha",
    ];
    for (key, rows) in r.group(&keys) {
        let opts: Vec<(&str, &str)> = keys[1..]
            .iter()
            .zip(&key[1..])
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let ours = run_csv(Method::Farrington, &opts, &series_csv(&key[0]));
        check_series_rows(&key, &ours, &r, &rows, |w, our, rr| {
            assert_opt_close(w, ours.num(our, "upperbound"), r.num(rr, "upperbound"));
            assert_eq!(ours.flag(our, "alarm"), r.flag(rr, "alarm"), "{w} alarm");
            assert_eq!(
                ours.flag(our, "trend"),
                r.flag(rr, "trend_used"),
                "{w} trend"
            );
            n += 1;
        });
    }
    assert!(n > 1000, "{n}");
}

#[test]
fn farrington_flexible_matches_r_surveillance() {
    let r = Table::read("flexible.csv");
    let mut n = 0;
    for (key, rows) in r.group(&["series", "case"]) {
        let r0 = &rows[0];
        let mut opts = vec![
            ("b", r.get(r0, "b")),
            ("w", r.get(r0, "w")),
            ("noPeriods", r.get(r0, "no_periods")), // R spelling accepted
            ("threshold-method", r.get(r0, "threshold")),
        ];
        if r.get(r0, "pwni") != "NA" {
            opts.push(("past-weeks-not-included", r.get(r0, "pwni")));
        }
        let integer_bounds = r.get(r0, "threshold") != "delta";
        let ours = run_csv(Method::FarringtonFlexible, &opts, &series_csv(&key[0]));
        check_series_rows(&key, &ours, &r, &rows, |w, our, rr| {
            if integer_bounds {
                assert_eq!(
                    ours.num(our, "upperbound"),
                    r.num(rr, "upperbound"),
                    "{w} upperbound"
                );
            } else {
                assert_opt_close(w, ours.num(our, "upperbound"), r.num(rr, "upperbound"));
            }
            assert_eq!(
                ours.flag(our, "alarm").unwrap_or(false),
                r.flag(rr, "alarm").unwrap_or(false),
                "{w} alarm"
            );
            for (o, rc) in [
                ("expected", "expected"),
                ("score", "score"),
                ("pvalue", "pvalue"),
                ("phi", "phi"),
                ("mu0", "mu0"),
            ] {
                assert_opt_close(&format!("{w} {o}"), ours.num(our, o), r.num(rr, rc));
            }
            let trend = ours.flag(our, "trend").map(|b| if b { 1.0 } else { 0.0 });
            assert_eq!(trend, r.num(rr, "trend"), "{w} trend");
            n += 1;
        });
    }
    assert!(n > 1000, "{n}");
}

#[test]
fn cusum_matches_r_surveillance() {
    let r = Table::read("cusum.csv");
    let mut n = 0;
    for (key, rows) in r.group(&["series", "trans", "k", "h", "nb_alpha", "range_start"]) {
        // R's range is one-based; the fixture stores the zero-based start.
        let start = format!("{}:", key[5].parse::<usize>().unwrap() + 1);
        let mut opts = vec![
            ("trans", key[1].as_str()),
            ("k", key[2].as_str()),
            ("h", key[3].as_str()),
            ("range", start.as_str()),
        ];
        if key[4] != "NA" {
            opts.push(("alpha", key[4].as_str()));
        }
        let ours = run_csv(Method::Cusum, &opts, &series_csv(&key[0]));
        let exact_bound = key[1] == "standard";
        check_series_rows(&key, &ours, &r, &rows, |w, our, rr| {
            if exact_bound {
                assert_eq!(
                    ours.num(our, "upperbound"),
                    r.num(rr, "upperbound"),
                    "{w} ub"
                );
            } else {
                assert_opt_close(w, ours.num(our, "upperbound"), r.num(rr, "upperbound"));
            }
            assert_opt_close(
                &format!("{w} cusum"),
                ours.num(our, "cusum"),
                r.num(rr, "cusum"),
            );
            assert_opt_close(&format!("{w} m"), ours.num(our, "expected"), r.num(rr, "m"));
            assert_eq!(ours.flag(our, "alarm"), r.flag(rr, "alarm"), "{w} alarm");
            n += 1;
        });
    }
    assert!(n > 2000, "{n}");
}

/// The same CUSUM range given by date instead of row number gives the same output.
#[test]
fn cusum_range_by_date_equals_range_by_row() {
    let input = series_csv("agona");
    let t = Table::parse(&input);
    let date = t.rows[212][0].clone(); // zero-based 212 = row 213
    let by_row = run_csv(Method::Cusum, &[("range", "213:")], &input);
    let by_date = run_csv(Method::Cusum, &[("range", &format!("{date}:"))], &input);
    assert_eq!(by_row.rows, by_date.rows);
    assert_eq!(by_row.get(&by_row.rows[211], "upperbound"), "");
    assert_ne!(by_row.get(&by_row.rows[212], "upperbound"), "");
}

fn tables_input(r: &Table) -> String {
    let mut s = String::from("label,a,b,c,d\n");
    for (i, row) in r.rows.iter().enumerate() {
        s.push_str(&format!(
            "\"table {i}, R\",{},{},{},{}\n",
            r.get(row, "a"),
            r.get(row, "b"),
            r.get(row, "c"),
            r.get(row, "d")
        ));
    }
    s
}

#[test]
fn two_by_two_methods_match_r() {
    let r = Table::read("tables.csv");
    let input = tables_input(&r);
    let prr = run_csv(Method::Prr, &[], &input);
    let ror = run_csv(Method::Ror, &[("level", "0.95")], &input);
    let ic = run_csv(Method::Ic, &[], &input);
    assert_eq!(
        prr.header,
        [
            "label",
            "a",
            "b",
            "c",
            "d",
            "prr",
            "prr_lower",
            "prr_upper",
            "chi2",
            "chi2_yates",
            "evans_signal"
        ]
    );
    for (i, rr) in r.rows.iter().enumerate() {
        let w = |s: &str| format!("table {i} {s}");
        assert_eq!(prr.get(&prr.rows[i], "label"), format!("table {i}, R"));
        for (ours, col, rc) in [
            (&prr, "prr", "prr"),
            (&prr, "prr_lower", "prr_lower"),
            (&prr, "prr_upper", "prr_upper"),
            (&prr, "chi2", "chi2"),
            (&prr, "chi2_yates", "chi2_yates"),
            (&ror, "ror", "ror"),
            (&ror, "ror_lower", "ror_lower"),
            (&ror, "ror_upper", "ror_upper"),
            (&ic, "expected", "expected"),
            (&ic, "ic", "ic"),
            (&ic, "ic_lower", "ic025"),
            (&ic, "ic_upper", "ic975"),
        ] {
            assert_opt_close(&w(col), ours.num(&ours.rows[i], col), r.num(rr, rc));
        }
        assert_eq!(
            prr.flag(&prr.rows[i], "evans_signal"),
            r.flag(rr, "evans"),
            "{}",
            w("evans")
        );
    }
    // the fixture has a table with b = 0: ROR undefined there, an empty cell, not a failure
    assert!(ror.rows.iter().any(|row| ror.get(row, "ror").is_empty()));
}

#[test]
fn chapman_matches_r() {
    let r = Table::read("chapman.csv");
    let mut input = String::from("n1,n2,m\n");
    for row in &r.rows {
        input.push_str(&format!(
            "{},{},{}\n",
            r.get(row, "n1"),
            r.get(row, "n2"),
            r.get(row, "m")
        ));
    }
    let ours = run_csv(Method::Chapman, &[], &input);
    for (our, rr) in ours.rows.iter().zip(&r.rows) {
        for c in [
            "n_hat",
            "variance",
            "wald_lower",
            "wald_upper",
            "log_lower",
            "log_upper",
            "completeness1",
            "completeness2",
            "completeness_combined",
        ] {
            assert_opt_close(c, ours.num(our, c), r.num(rr, c));
        }
    }
    assert_eq!(ours.rows.len(), r.rows.len());
}

#[test]
fn poisson_ci_and_rates_match_r_poisson_test() {
    let r = Table::read("poisson_ci.csv");
    let mut checked = 0;
    for (key, rows) in r.group(&["level"]) {
        let mut input = String::from("observed,population\n");
        for row in &rows {
            input.push_str(&format!(
                "{},{}\n",
                r.get(row, "observed"),
                r.get(row, "population")
            ));
        }
        for (ci, prefix) in [("exact", "exact"), ("byar", "byar")] {
            let ours = run_csv(
                Method::PoissonCi,
                &[("conf.level", &key[0]), ("ci-method", ci)],
                &input,
            );
            for (our, rr) in ours.rows.iter().zip(&rows) {
                let w = format!("{ci} level {} O={}", key[0], r.get(rr, "observed"));
                assert_opt_close(
                    &w,
                    ours.num(our, "lower"),
                    r.num(rr, &format!("{prefix}_lower")),
                );
                assert_opt_close(
                    &w,
                    ours.num(our, "upper"),
                    r.num(rr, &format!("{prefix}_upper")),
                );
                assert_opt_close(&w, ours.num(our, "rate"), r.num(rr, "rate100k"));
                assert_opt_close(
                    &w,
                    ours.num(our, "rate_lower"),
                    r.num(rr, &format!("rate_{prefix}_lower")),
                );
                assert_opt_close(
                    &w,
                    ours.num(our, "rate_upper"),
                    r.num(rr, &format!("rate_{prefix}_upper")),
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * r.rows.len());
}

#[test]
fn sir_matches_r_poisson_test() {
    let r = Table::read("sir.csv");
    let mut input = String::from("region,observed,expected\n");
    for row in &r.rows {
        input.push_str(&format!(
            "x,{},{}\n",
            r.get(row, "observed"),
            r.get(row, "expected")
        ));
    }
    let ours = run_csv(Method::Sir, &[], &input);
    for (our, rr) in ours.rows.iter().zip(&r.rows) {
        assert_opt_close("sir", ours.num(our, "sir"), r.num(rr, "sir"));
        assert_opt_close("lower", ours.num(our, "sir_lower"), r.num(rr, "lower"));
        assert_opt_close("upper", ours.num(our, "sir_upper"), r.num(rr, "upper"));
    }
}

fn report_rows_input() -> String {
    // openEBGM raw data as R wrote it: header id,var1,var2,strat
    std::fs::read_to_string(common::oracle_dir().join("report_rows.csv")).unwrap()
}

fn r_prior() -> (Table, String) {
    let t = Table::read("mgps_fit.csv");
    let r0 = &t.rows[0];
    let p = ["alpha1", "beta1", "alpha2", "beta2", "p"]
        .iter()
        .map(|c| t.get(r0, c).to_string())
        .collect::<Vec<_>>()
        .join(",");
    (t, p)
}

#[test]
fn ebgm_with_r_hyperparameters_matches_openebgm_formulas() {
    let cells = Table::read("cells.csv");
    let (_, prior) = r_prior();
    let ours = run_csv(Method::Ebgm, &[("prior", &prior)], &report_rows_input());
    assert_eq!(ours.rows.len(), cells.rows.len(), "number of pairs");
    for (our, rr) in ours.rows.iter().zip(&cells.rows) {
        let w = format!(
            "{}/{}",
            cells.get(rr, "exposure"),
            cells.get(rr, "diagnosis")
        );
        assert_eq!(ours.get(our, "exposure"), cells.get(rr, "exposure"));
        assert_eq!(ours.get(our, "diagnosis"), cells.get(rr, "diagnosis"));
        assert_eq!(ours.num(our, "N"), cells.num(rr, "N"), "{w} N");
        for (o, c) in [
            ("E", "E"),
            ("qn", "qn"),
            ("ebgm", "ebgm"),
            ("eb05", "eb05"),
            ("eb95", "eb95"),
        ] {
            assert_opt_close(&format!("{w} {o}"), ours.num(our, o), cells.num(rr, c));
        }
        assert_eq!(ours.get(our, "converged"), "", "no fit with a given prior");
    }
    // stratified expected counts (openEBGM processRaw(stratify = TRUE))
    let strat = run_csv(
        Method::Ebgm,
        &[("prior", &prior), ("stratify", "TRUE")],
        &report_rows_input(),
    );
    for (our, rr) in strat.rows.iter().zip(&cells.rows) {
        assert_opt_close("E_strat", strat.num(our, "E"), cells.num(rr, "E_strat"));
    }
}

#[test]
fn ebgm_fitted_prior_matches_r_fit() {
    let (fit, _) = r_prior();
    let f0 = &fit.rows[0];
    let cells = Table::read("cells.csv");
    let ours = run_csv(Method::Ebgm, &[], &report_rows_input());
    let o0 = &ours.rows[0];
    // Different optimisers (Nelder-Mead here, nlminb in R): hyperparameters agree to 1e-3
    // relative and our likelihood is at least as good (see ods-stats' oracle test).
    for c in ["alpha1", "beta1", "alpha2", "beta2", "p"] {
        let (a, b) = (ours.num(o0, c).unwrap(), fit.num(f0, c).unwrap());
        assert!(((a - b) / b).abs() < 1e-3, "{c}: ours {a} vs R {b}");
    }
    let (a, b) = (
        ours.num(o0, "neg_log_lik").unwrap(),
        fit.num(f0, "neg_log_lik").unwrap(),
    );
    assert!(a <= b + 1e-7 * b.abs(), "negLL ours {a} vs R {b}");
    assert_eq!(ours.get(o0, "converged"), "true");
    // Scores under the slightly different optimum stay within 1e-3 of R's.
    for (our, rr) in ours.rows.iter().zip(&cells.rows) {
        for c in ["ebgm", "eb05", "eb95"] {
            let (a, b) = (ours.num(our, c).unwrap(), cells.num(rr, c).unwrap());
            assert!(((a - b) / b).abs() < 1e-3, "{c}: ours {a} vs R {b}");
        }
    }
}

#[test]
fn prr_on_report_rows_matches_process_raw() {
    let cells = Table::read("cells.csv");
    let ours = run_csv(Method::Prr, &[], &report_rows_input());
    assert_eq!(ours.rows.len(), cells.rows.len());
    for (our, rr) in ours.rows.iter().zip(&cells.rows) {
        assert_eq!(ours.get(our, "exposure"), cells.get(rr, "exposure"));
        for c in ["a", "b", "c", "d"] {
            assert_eq!(ours.num(our, c), cells.num(rr, c), "{c}");
        }
        let (ours_prr, r_prr) = (ours.num(our, "prr"), cells.num(rr, "prr"));
        // processRaw gives Inf where c = 0; we give an empty cell (undefined, no correction)
        match (ours_prr, r_prr) {
            (None, Some(x)) => assert!(x.is_infinite()),
            (a, b) => assert_opt_close("prr", a, b),
        }
    }
}

/// Sanity check of the helper: `close` is strict enough to fail on a 1e-3 difference.
#[test]
fn tolerance_is_strict() {
    assert!(close(1.0, 1.00001));
    assert!(!close(1.0, 1.001));
}
