//! Oracle tests: compare `ods-stats` with fixtures produced by R (`tests/oracle/make_fixtures.R`).
//!
//! The fixtures are committed, so these tests do not need R. Set `ODS_RUN_R_ORACLE=1` (with
//! `Rscript` and the `surveillance` package installed) to regenerate them into a temporary
//! directory and run every comparison against the fresh output as well.
//!
//! Tolerances: continuous values must agree to 1e-4 relative (`|ours - R| <= 1e-4 |R|`), with an
//! absolute floor of 1e-9 only for reference values that are exactly or practically zero (where a
//! relative tolerance is meaningless); alarms, discrete quantiles and other integer-valued bounds
//! must agree exactly. The single looser comparison (fitted MGPS hyperparameters, 1e-3) is
//! explained at the test.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ods_stats::aberration::{
    cusum, ears, farrington, farrington_flexible, poisson_cusum, AberrationPoint, CusumControl,
    CusumMean, CusumTransform, Details, EarsControl, EarsMethod, FarringtonControl,
    FlexibleControl, PoissonCusumControl, PoissonCusumConvention, PowerTransform, Shift,
    ThresholdMethod,
};
use ods_stats::capture_recapture::chapman;
use ods_stats::disproportionality::{analyse, build_pair_cells, ReportRow, TwoByTwo};
use ods_stats::mgps::{
    eb_score, fit_prior, neg_log_likelihood, Cell, GammaMixture, MgpsFitOptions,
};
use ods_stats::poisson::{poisson_byar_ci, poisson_exact_ci, rate_per_100k, PoissonCiMethod};
use ods_stats::special;
use ods_stats::standardisation::{funnel_limit, indirect_standardisation};

const REL: f64 = 1e-4;
const ABS_FLOOR: f64 = 1e-9;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("oracle")
}

struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn read(dir: &Path, name: &str) -> Table {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        let rows = lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split(',').map(|s| s.trim().to_string()).collect())
            .collect();
        Table { header, rows }
    }

    fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    }

    fn get<'a>(&self, row: &'a [String], name: &str) -> &'a str {
        &row[self.col(name)]
    }

    fn num(&self, row: &[String], name: &str) -> Option<f64> {
        let s = self.get(row, name);
        if s == "NA" || s == "NaN" {
            None
        } else {
            Some(
                s.parse()
                    .unwrap_or_else(|_| panic!("bad number {s} in {name}")),
            )
        }
    }

    fn f(&self, row: &[String], name: &str) -> f64 {
        self.num(row, name).unwrap_or(f64::NAN)
    }

    fn boolean(&self, row: &[String], name: &str) -> Option<bool> {
        match self.get(row, name) {
            "TRUE" => Some(true),
            "FALSE" => Some(false),
            _ => None,
        }
    }

    /// Group rows by the given key columns (order preserved within a group).
    fn group(&self, keys: &[&str]) -> BTreeMap<Vec<String>, Vec<Vec<String>>> {
        let mut m: BTreeMap<Vec<String>, Vec<Vec<String>>> = BTreeMap::new();
        for r in &self.rows {
            let k = keys.iter().map(|c| self.get(r, c).to_string()).collect();
            m.entry(k).or_default().push(r.clone());
        }
        m
    }
}

fn close(ours: f64, r: f64) -> bool {
    if ours.is_nan() && r.is_nan() {
        return true;
    }
    if ours.is_infinite() || r.is_infinite() {
        return ours == r;
    }
    let d = (ours - r).abs();
    d <= REL * r.abs() || d <= ABS_FLOOR
}

#[track_caller]
fn assert_close(what: &str, ours: f64, r: f64) {
    assert!(
        close(ours, r),
        "{what}: ours {ours} vs R {r} (rel diff {:e})",
        ((ours - r) / r).abs()
    );
}

#[track_caller]
fn assert_opt_close(what: &str, ours: Option<f64>, r: Option<f64>) {
    match (ours, r) {
        (None, None) => {}
        (Some(a), Some(b)) => assert_close(what, a, b),
        (Some(a), None) if a.is_nan() => {}
        _ => panic!("{what}: ours {ours:?} vs R {r:?}"),
    }
}

fn load_series(dir: &Path, name: &str) -> Vec<f64> {
    let t = Table::read(&dir.join("series"), &format!("{name}.csv"));
    t.rows.iter().map(|r| t.f(r, "count")).collect()
}

fn frequency_of(series: &str) -> usize {
    if series == "monthly" {
        12
    } else {
        52
    }
}

fn by_index(points: &[AberrationPoint]) -> BTreeMap<usize, &AberrationPoint> {
    points.iter().map(|p| (p.index, p)).collect()
}

// ------------------------------------------------------------------ comparisons

fn check_special(dir: &Path) {
    let t = Table::read(dir, "special.csv");
    for r in &t.rows {
        let (a, b, c, v) = (t.f(r, "a"), t.f(r, "b"), t.f(r, "c"), t.f(r, "value"));
        let fun = t.get(r, "fn");
        let ours = match fun {
            "qgamma" => special::gamma_quantile(b, a),
            "pgamma" => special::gamma_p(b, a),
            "qnorm" => special::normal_quantile(a),
            "pnorm" => special::normal_cdf(a),
            "lgamma" => special::ln_gamma(a),
            "digamma" => special::digamma(a),
            "qnbinom" => special::nbinom_quantile(a, b, c),
            "pnbinom_upper" => special::nbinom_sf(a, b, c),
            "qpois" => special::poisson_quantile(a, b),
            "ppois" => special::poisson_cdf(a, b),
            "pt2" => special::t_two_sided_p(a, b),
            "qchisq" => special::chi2_quantile(a, b),
            other => panic!("unknown fn {other}"),
        };
        if fun == "qnbinom" || fun == "qpois" {
            assert_eq!(ours, v, "{fun}({a}, {b}, {c})");
        } else {
            assert_close(&format!("{fun}({a}, {b}, {c})"), ours, v);
        }
    }
}

fn check_poisson(dir: &Path) {
    let t = Table::read(dir, "poisson_ci.csv");
    for r in &t.rows {
        let o = t.f(r, "observed") as u64;
        let lev = t.f(r, "level");
        let ex = poisson_exact_ci(o, lev).expect("exact");
        assert_close("exact lower", ex.lower, t.f(r, "exact_lower"));
        assert_close("exact upper", ex.upper, t.f(r, "exact_upper"));
        let by = poisson_byar_ci(o, lev).expect("byar");
        assert_close("byar lower", by.lower, t.f(r, "byar_lower"));
        assert_close("byar upper", by.upper, t.f(r, "byar_upper"));
        let pop = t.f(r, "population");
        let re = rate_per_100k(o, pop, lev, PoissonCiMethod::Exact).expect("rate");
        assert_close("rate", re.estimate, t.f(r, "rate100k"));
        assert_close("rate lower", re.lower, t.f(r, "rate_exact_lower"));
        assert_close("rate upper", re.upper, t.f(r, "rate_exact_upper"));
        let rb = rate_per_100k(o, pop, lev, PoissonCiMethod::Byar).expect("rate");
        assert_close("rate byar lower", rb.lower, t.f(r, "rate_byar_lower"));
        assert_close("rate byar upper", rb.upper, t.f(r, "rate_byar_upper"));
    }
}

fn check_sir_funnel(dir: &Path) {
    let inputs = std::fs::read_to_string(dir.join("sir_inputs.txt")).expect("sir inputs");
    let mut lines = inputs.lines();
    let parse = |l: Option<&str>| -> Vec<f64> {
        l.unwrap_or_default()
            .split(',')
            .map(|s| s.trim().parse::<f64>().expect("number"))
            .collect()
    };
    let rates = parse(lines.next());
    let pops = parse(lines.next());
    let t = Table::read(dir, "sir.csv");
    for r in &t.rows {
        let o = t.f(r, "observed") as u64;
        let s = indirect_standardisation(o, &rates, &pops, 0.95).expect("sir");
        assert_close("expected", s.expected, t.f(r, "expected"));
        assert_close("sir", s.ratio, t.f(r, "sir"));
        assert_close("sir lower", s.lower, t.f(r, "lower"));
        assert_close("sir upper", s.upper, t.f(r, "upper"));
    }
    let t = Table::read(dir, "funnel.csv");
    for r in &t.rows {
        let e = t.f(r, "expected");
        let l = funnel_limit(e, t.f(r, "level")).expect("funnel");
        assert_close("funnel lower count", l.lower_count, t.f(r, "lower_count"));
        assert_close("funnel upper count", l.upper_count, t.f(r, "upper_count"));
        assert_close("funnel lower ratio", l.lower_ratio, t.f(r, "lower_ratio"));
        assert_close("funnel upper ratio", l.upper_ratio, t.f(r, "upper_ratio"));
        assert_eq!(
            l.lower_quantile,
            t.f(r, "lower_quantile"),
            "qpois lower E={e}"
        );
        assert_eq!(
            l.upper_quantile,
            t.f(r, "upper_quantile"),
            "qpois upper E={e}"
        );
    }
}

fn check_chapman(dir: &Path) {
    let t = Table::read(dir, "chapman.csv");
    for r in &t.rows {
        let (n1, n2, m) = (t.f(r, "n1") as u64, t.f(r, "n2") as u64, t.f(r, "m") as u64);
        let c = chapman(n1, n2, m, 0.95).expect("chapman");
        assert_close("N", c.n_hat, t.f(r, "n_hat"));
        assert_close("var", c.variance, t.f(r, "variance"));
        assert_close("wald lower", c.wald_lower, t.f(r, "wald_lower"));
        assert_close("wald upper", c.wald_upper, t.f(r, "wald_upper"));
        assert_close("log lower", c.log_lower, t.f(r, "log_lower"));
        assert_close("log upper", c.log_upper, t.f(r, "log_upper"));
        assert_close("c1", c.completeness_source1, t.f(r, "completeness1"));
        assert_close("c2", c.completeness_source2, t.f(r, "completeness2"));
        assert_close(
            "cc",
            c.completeness_combined,
            t.f(r, "completeness_combined"),
        );
    }
}

fn check_tables(dir: &Path) {
    let t = Table::read(dir, "tables.csv");
    for r in &t.rows {
        let tb = TwoByTwo::new(
            t.f(r, "a") as u64,
            t.f(r, "b") as u64,
            t.f(r, "c") as u64,
            t.f(r, "d") as u64,
        );
        let d = analyse(&tb, 0.95).expect("analyse");
        let p = d.prr.expect("prr defined");
        assert_close("prr", p.estimate, t.f(r, "prr"));
        assert_close("prr lower", p.lower, t.f(r, "prr_lower"));
        assert_close("prr upper", p.upper, t.f(r, "prr_upper"));
        assert_opt_close("ror", d.ror.map(|x| x.estimate), t.num(r, "ror"));
        assert_opt_close("ror lower", d.ror.map(|x| x.lower), t.num(r, "ror_lower"));
        assert_opt_close("ror upper", d.ror.map(|x| x.upper), t.num(r, "ror_upper"));
        let chi = d.chi_square.expect("chi2");
        assert_close("chi2", chi.uncorrected, t.f(r, "chi2"));
        assert_close("chi2 yates", chi.yates, t.f(r, "chi2_yates"));
        assert_eq!(Some(d.evans_signal), t.boolean(r, "evans"), "evans {tb:?}");
        assert_close("E", d.expected, t.f(r, "expected"));
        assert_close("ic", d.ic.ic, t.f(r, "ic"));
        assert_close("ic025", d.ic.ic_lower, t.f(r, "ic025"));
        assert_close("ic975", d.ic.ic_upper, t.f(r, "ic975"));
    }
}

fn check_cells_and_mgps(dir: &Path) {
    let rows_t = Table::read(dir, "report_rows.csv");
    let rows: Vec<ReportRow<String, String, String, String>> = rows_t
        .rows
        .iter()
        .map(|r| ReportRow {
            report_id: rows_t.get(r, "id").to_string(),
            exposure: rows_t.get(r, "var1").to_string(),
            diagnosis: rows_t.get(r, "var2").to_string(),
            stratum: Some(rows_t.get(r, "strat").to_string()),
        })
        .collect();
    let plain = build_pair_cells(&rows, false);
    let strat = build_pair_cells(&rows, true);
    let t = Table::read(dir, "cells.csv");
    assert_eq!(plain.len(), t.rows.len(), "number of pairs");
    for ((r, c), cs) in t.rows.iter().zip(&plain).zip(&strat) {
        assert_eq!(c.exposure, t.get(r, "exposure"));
        assert_eq!(c.diagnosis, t.get(r, "diagnosis"));
        assert_eq!(c.n as f64, t.f(r, "N"));
        assert_close("E", c.expected, t.f(r, "E"));
        assert_close("E strat", cs.expected, t.f(r, "E_strat"));
        assert_eq!(c.table.b as f64, t.f(r, "b"));
        assert_eq!(c.table.c as f64, t.f(r, "c"));
        assert_eq!(c.table.d as f64, t.f(r, "d"));
        if let Some(p) = ods_stats::disproportionality::prr(&c.table, 0.95).expect("prr") {
            assert_close("processRaw PRR", p.estimate, t.f(r, "prr"));
        }
    }
    // negative log-likelihood at fixed hyperparameters
    let cells: Vec<Cell> = plain
        .iter()
        .map(|c| Cell {
            n: c.n as f64,
            e: c.expected,
        })
        .collect();
    let nl = Table::read(dir, "mgps_negll.csv");
    for r in &nl.rows {
        let prior = GammaMixture::new(
            nl.f(r, "alpha1"),
            nl.f(r, "beta1"),
            nl.f(r, "alpha2"),
            nl.f(r, "beta2"),
            nl.f(r, "p"),
        )
        .expect("prior");
        let ns = nl.f(r, "n_star") as u32;
        assert_close(
            "negLL",
            neg_log_likelihood(&prior, &cells, ns),
            nl.f(r, "value"),
        );
    }
    // posterior scores with R's fitted hyperparameters: deterministic, 1e-4
    let ft = Table::read(dir, "mgps_fit.csv");
    let fr = &ft.rows[0];
    let r_prior = GammaMixture::new(
        ft.f(fr, "alpha1"),
        ft.f(fr, "beta1"),
        ft.f(fr, "alpha2"),
        ft.f(fr, "beta2"),
        ft.f(fr, "p"),
    )
    .expect("prior");
    for (r, c) in t.rows.iter().zip(&cells) {
        let s = eb_score(&r_prior, c.n, c.e).expect("score");
        assert_close("Qn", s.qn, t.f(r, "qn"));
        assert_close("EBGM", s.ebgm, t.f(r, "ebgm"));
        assert_close("EB05", s.eb05, t.f(r, "eb05"));
        assert_close("EB95", s.eb95, t.f(r, "eb95"));
    }
    // Our own maximum likelihood fit. The optimum is found by a different optimiser (Nelder-Mead
    // here, nlminb in R), so: our minimum must not be worse than R's (beyond 1e-7 relative),
    // and the hyperparameters must agree to 1e-3 relative -- looser than 1e-4 because a flat
    // likelihood ridge lets two correct optimisers stop at slightly different points.
    let fit = fit_prior(&cells, &MgpsFitOptions::default()).expect("fit");
    let r_min = ft.f(fr, "neg_log_lik");
    assert!(
        fit.neg_log_likelihood <= r_min + 1e-7 * r_min.abs(),
        "our negLL {} vs R {}",
        fit.neg_log_likelihood,
        r_min
    );
    for (name, ours, theirs) in [
        ("alpha1", fit.prior.alpha1, r_prior.alpha1),
        ("beta1", fit.prior.beta1, r_prior.beta1),
        ("alpha2", fit.prior.alpha2, r_prior.alpha2),
        ("beta2", fit.prior.beta2, r_prior.beta2),
        ("p", fit.prior.p, r_prior.p),
    ] {
        assert!(
            ((ours - theirs) / theirs).abs() < 1e-3,
            "{name}: ours {ours} vs R {theirs}"
        );
    }
}

fn check_ears(dir: &Path) {
    let t = Table::read(dir, "ears.csv");
    for (key, rows) in t.group(&["series", "method", "baseline", "alpha", "min_sigma"]) {
        let counts = load_series(dir, &key[0]);
        let method = match key[1].as_str() {
            "C1" => EarsMethod::C1,
            "C2" => EarsMethod::C2,
            _ => EarsMethod::C3,
        };
        let ctl = EarsControl {
            method,
            baseline: key[2].parse().expect("baseline"),
            alpha: if key[3] == "NA" {
                None
            } else {
                Some(key[3].parse().expect("alpha"))
            },
            min_sigma: key[4].parse().expect("min sigma"),
            range: None,
        };
        let res = ears(&counts, &ctl).expect("ears");
        assert_eq!(res.len(), rows.len(), "{key:?}: number of points");
        let m = by_index(&res);
        for r in &rows {
            let i = t.f(r, "index") as usize;
            let p = m
                .get(&i)
                .unwrap_or_else(|| panic!("{key:?}: missing index {i}"));
            assert_opt_close(
                &format!("{key:?} ub@{i}"),
                p.upperbound,
                t.num(r, "upperbound"),
            );
            assert_eq!(p.alarm, t.boolean(r, "alarm"), "{key:?} alarm@{i}");
        }
    }
}

fn check_farrington(dir: &Path) {
    let t = Table::read(dir, "farrington.csv");
    let mut n = 0;
    for (key, rows) in t.group(&[
        "series",
        "b",
        "w",
        "reweight",
        "trend",
        "powertrans",
        "alpha",
    ]) {
        let counts = load_series(dir, &key[0]);
        let ctl = FarringtonControl {
            b: key[1].parse().expect("b"),
            w: key[2].parse().expect("w"),
            reweight: key[3] == "TRUE",
            trend: key[4] == "TRUE",
            powertrans: match key[5].as_str() {
                "2/3" => PowerTransform::TwoThirds,
                "1/2" => PowerTransform::Half,
                _ => PowerTransform::None,
            },
            alpha: key[6].parse().expect("alpha"),
            ..FarringtonControl::default()
        };
        let res = farrington(&counts, frequency_of(&key[0]), &ctl).expect("farrington");
        assert_eq!(res.len(), rows.len(), "{key:?}: number of points");
        let m = by_index(&res);
        for r in &rows {
            let i = t.f(r, "index") as usize;
            let p = m
                .get(&i)
                .unwrap_or_else(|| panic!("{key:?}: missing index {i}"));
            assert_opt_close(
                &format!("{key:?} ub@{i}"),
                p.upperbound,
                t.num(r, "upperbound"),
            );
            assert_eq!(p.alarm, t.boolean(r, "alarm"), "{key:?} alarm@{i}");
            let Details::Farrington(d) = &p.details else {
                panic!("details")
            };
            assert_eq!(
                Some(d.trend),
                t.boolean(r, "trend_used"),
                "{key:?} trend@{i}"
            );
            n += 1;
        }
    }
    assert!(n > 1000);
}

fn check_flexible(dir: &Path) {
    let t = Table::read(dir, "flexible.csv");
    let mut n = 0;
    for (key, rows) in t.group(&["series", "case"]) {
        let counts = load_series(dir, &key[0]);
        let r0 = &rows[0];
        let pwni = t.num(r0, "pwni").map(|v| v as usize);
        let ctl = FlexibleControl {
            b: t.f(r0, "b") as usize,
            w: t.f(r0, "w") as usize,
            no_periods: t.f(r0, "no_periods") as usize,
            past_weeks_not_included: pwni,
            threshold_method: match t.get(r0, "threshold") {
                "delta" => ThresholdMethod::Delta,
                "nbPlugin" => ThresholdMethod::NbPlugin,
                _ => ThresholdMethod::Muan,
            },
            ..FlexibleControl::default()
        };
        let res = farrington_flexible(&counts, frequency_of(&key[0]), &ctl).expect("flexible");
        assert_eq!(res.len(), rows.len(), "{key:?}: number of points");
        let m = by_index(&res);
        let integer_bounds = ctl.threshold_method != ThresholdMethod::Delta;
        for r in &rows {
            let i = t.f(r, "index") as usize;
            let p = m
                .get(&i)
                .unwrap_or_else(|| panic!("{key:?}: missing index {i}"));
            let w = |s: &str| format!("{key:?} {s}@{i}");
            if integer_bounds {
                assert_eq!(p.upperbound, t.num(r, "upperbound"), "{}", w("ub"));
            } else {
                assert_opt_close(&w("ub"), p.upperbound, t.num(r, "upperbound"));
            }
            assert_eq!(
                p.alarm.unwrap_or(false),
                t.boolean(r, "alarm").unwrap_or(false),
                "{}",
                w("alarm")
            );
            assert_opt_close(&w("expected"), p.expected, t.num(r, "expected"));
            let Details::Flexible(d) = &p.details else {
                panic!("details")
            };
            assert_opt_close(&w("score"), d.score, t.num(r, "score"));
            assert_opt_close(&w("pvalue"), d.pvalue, t.num(r, "pvalue"));
            assert_opt_close(&w("phi"), d.phi, t.num(r, "phi"));
            assert_opt_close(&w("mu0"), d.mu0, t.num(r, "mu0"));
            assert_eq!(
                d.trend.map(|b| if b { 1.0 } else { 0.0 }),
                t.num(r, "trend"),
                "{}",
                w("trend")
            );
            n += 1;
        }
    }
    assert!(n > 1000);
}

fn check_cusum(dir: &Path) {
    let t = Table::read(dir, "cusum.csv");
    for (key, rows) in t.group(&["series", "trans", "k", "h", "nb_alpha", "range_start"]) {
        let counts = load_series(dir, &key[0]);
        let start: usize = key[5].parse().expect("start");
        let trans = match key[1].as_str() {
            "standard" => CusumTransform::Standard,
            "rossi" => CusumTransform::Rossi,
            "anscombe" => CusumTransform::Anscombe,
            "anscombe2nd" => CusumTransform::Anscombe2nd,
            "pearsonNegBin" => CusumTransform::PearsonNegBin(key[4].parse().expect("alpha")),
            _ => CusumTransform::None,
        };
        let ctl = CusumControl {
            range: Some(start..counts.len()),
            k: key[2].parse().expect("k"),
            h: key[3].parse().expect("h"),
            m: CusumMean::BeforeRange,
            trans,
        };
        let res = cusum(&counts, &ctl).expect("cusum");
        let m = by_index(&res);
        for r in &rows {
            let i = t.f(r, "index") as usize;
            let p = m[&i];
            let Details::Cusum(d) = &p.details else {
                panic!("details")
            };
            assert_close(&format!("{key:?} cusum@{i}"), d.cusum, t.f(r, "cusum"));
            assert_close(&format!("{key:?} m"), d.m, t.f(r, "m"));
            if trans == CusumTransform::Standard {
                assert_eq!(p.upperbound, t.num(r, "upperbound"), "{key:?} ub@{i}");
            } else {
                assert_opt_close(
                    &format!("{key:?} ub@{i}"),
                    p.upperbound,
                    t.num(r, "upperbound"),
                );
            }
            assert_eq!(p.alarm, t.boolean(r, "alarm"), "{key:?} alarm@{i}");
        }
        // The Lucas CUSUM with the AlgoCusum convention equals algo.cusum(trans = "none").
        if trans == CusumTransform::None {
            let mu0 = counts[..start].iter().sum::<f64>() / start as f64;
            let mut pc = PoissonCusumControl::new(Shift::Ratio(2.0), ctl.h);
            pc.range = Some(start..counts.len());
            let lucas = poisson_cusum(&counts, &pc).expect("lucas");
            for (r, p) in rows.iter().zip(&lucas) {
                let Details::PoissonCusum(d) = &p.details else {
                    panic!("details")
                };
                assert_close("lucas k", d.k, ctl.k);
                assert_close("lucas mu0", d.mu0, mu0);
                assert_close(
                    &format!("{key:?} lucas S@{}", p.index),
                    d.cusum,
                    t.f(r, "cusum"),
                );
                assert_eq!(
                    p.alarm,
                    t.boolean(r, "alarm"),
                    "{key:?} lucas alarm@{}",
                    p.index
                );
            }
        }
    }
}

fn check_catcusum(dir: &Path) {
    let t = Table::read(dir, "catcusum.csv");
    for (key, rows) in t.group(&["series", "mu0", "mu1", "h", "range_start"]) {
        let counts = load_series(dir, &key[0]);
        let start: usize = key[4].parse().expect("start");
        let mu0: f64 = key[1].parse().expect("mu0");
        let mu1: f64 = key[2].parse().expect("mu1");
        let ctl = PoissonCusumControl {
            range: Some(start..counts.len()),
            mu0: Some(mu0),
            shift: Shift::Mean(mu1),
            h: key[3].parse().expect("h"),
            convention: PoissonCusumConvention::CategoricalCusum,
        };
        let res = poisson_cusum(&counts, &ctl).expect("cusum");
        for (r, p) in rows.iter().zip(&res) {
            let Details::PoissonCusum(d) = &p.details else {
                panic!("details")
            };
            assert_close(&format!("{key:?} S@{}", p.index), d.cusum, t.f(r, "lucas"));
            assert_eq!(p.alarm, t.boolean(r, "alarm"), "{key:?} alarm@{}", p.index);
        }
    }
}

fn check_all(dir: &Path) {
    check_special(dir);
    check_poisson(dir);
    check_sir_funnel(dir);
    check_chapman(dir);
    check_tables(dir);
    check_cells_and_mgps(dir);
    check_ears(dir);
    check_farrington(dir);
    check_flexible(dir);
    check_cusum(dir);
    check_catcusum(dir);
}

// ------------------------------------------------------------------ tests on committed fixtures

#[test]
fn special_functions_match_r() {
    check_special(&fixture_dir());
}

#[test]
fn poisson_intervals_and_rates_match_r() {
    check_poisson(&fixture_dir());
}

#[test]
fn sir_and_funnel_limits_match_r() {
    check_sir_funnel(&fixture_dir());
}

#[test]
fn chapman_matches_independent_r() {
    check_chapman(&fixture_dir());
}

#[test]
fn two_by_two_measures_match_r() {
    check_tables(&fixture_dir());
}

#[test]
fn pair_cells_and_mgps_match_independent_r() {
    check_cells_and_mgps(&fixture_dir());
}

#[test]
fn ears_matches_r_surveillance() {
    check_ears(&fixture_dir());
}

#[test]
fn farrington_matches_r_surveillance() {
    check_farrington(&fixture_dir());
}

#[test]
fn farrington_flexible_matches_r_surveillance() {
    check_flexible(&fixture_dir());
}

#[test]
fn cusum_matches_r_surveillance() {
    check_cusum(&fixture_dir());
}

#[test]
fn lucas_cusum_matches_r_categorical_cusum() {
    check_catcusum(&fixture_dir());
}

/// Re-runs the R script (only with `ODS_RUN_R_ORACLE=1` and `Rscript` on PATH) and compares
/// against the freshly generated fixtures.
#[test]
fn rerun_r_oracle_when_requested() {
    if std::env::var("ODS_RUN_R_ORACLE").ok().as_deref() != Some("1") {
        eprintln!("skipping: set ODS_RUN_R_ORACLE=1 to re-run the R oracle");
        return;
    }
    let out = std::env::temp_dir().join(format!("ods-stats-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temp dir");
    let status = std::process::Command::new("Rscript")
        .arg(fixture_dir().join("make_fixtures.R"))
        .arg(&out)
        .status()
        .expect("Rscript must be installed when ODS_RUN_R_ORACLE=1");
    assert!(status.success(), "make_fixtures.R failed");
    check_all(&out);
    let _ = std::fs::remove_dir_all(&out);
}
