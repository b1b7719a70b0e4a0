//! Behavioural tests of the public API: conventions, defaults and error messages.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use ods_stats::aberration::{
    detect, ears, farrington, farrington_flexible, lucas_reference_value, poisson_cusum,
    EarsControl, EarsMethod, FarringtonControl, FlexibleControl, MethodControl,
    PoissonCusumControl, Shift, ThresholdMethod,
};
use ods_stats::capture_recapture::chapman;
use ods_stats::disproportionality::{analyse, build_pair_cells, ReportRow, TwoByTwo};
use ods_stats::poisson::{rate_per_100k, PoissonCiMethod};
use ods_stats::StatsError;

#[test]
fn short_series_error_is_actionable() {
    let counts = vec![1.0; 100];
    let err = farrington(&counts, 52, &FarringtonControl::default()).expect_err("too short");
    let msg = err.to_string();
    assert!(msg.contains("b=5 years"), "{msg}");
    assert!(msg.contains("frequency 52"), "{msg}");
    assert!(msg.contains("need at least 257 points, got 100"), "{msg}");
    let err = farrington_flexible(&counts, 52, &FlexibleControl::noufaily()).expect_err("short");
    assert!(
        matches!(
            err,
            StatsError::SeriesTooShort {
                needed: 264,
                got: 100,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn invalid_counts_name_the_position() {
    let mut counts = vec![2.0; 30];
    counts[17] = f64::NAN;
    let err = ears(&counts, &EarsControl::default()).expect_err("nan");
    assert!(
        matches!(err, StatsError::InvalidInput { index: 17, .. }),
        "{err}"
    );
    counts[17] = -1.0;
    let err = ears(&counts, &EarsControl::default()).expect_err("negative");
    assert!(err.to_string().contains("index 17"), "{err}");
}

#[test]
fn defaults_follow_r_surveillance() {
    let f = FarringtonControl::default();
    assert_eq!((f.b, f.w, f.alpha, f.limit54), (5, 3, 0.05, (5.0, 4)));
    assert!(f.reweight && f.trend);
    let x = FlexibleControl::default();
    assert_eq!((x.no_periods, x.past_weeks_not_included), (1, None));
    assert_eq!(x.threshold_method, ThresholdMethod::Delta);
    assert_eq!(x.weights_threshold, 2.58);
    let n = FlexibleControl::noufaily();
    assert_eq!((n.no_periods, n.past_weeks_not_included), (10, Some(26)));
    assert_eq!(n.threshold_method, ThresholdMethod::NbPlugin);
    let e = EarsControl::default();
    assert_eq!((e.baseline, e.alpha, e.min_sigma), (7, None, 0.0));
}

#[test]
fn ears_c3_uses_package_default_alpha() {
    let counts: Vec<f64> = (0..40).map(|i| f64::from(i % 5 + 1)).collect();
    let res = ears(&counts, &EarsControl::with_method(EarsMethod::C3)).expect("c3");
    let ods_stats::aberration::Details::Ears(d) = &res[0].details else {
        panic!("details")
    };
    assert_eq!(d.alpha, 0.025);
    assert_eq!(res[0].index, 11); // baseline 7 + lag 2 + two previous C2 values
}

#[test]
fn evans_flag_uses_yates_corrected_chi_square() {
    // PRR 3.81, uncorrected chi-square 6.55 >= 4 but Yates-corrected 3.87 < 4: no signal.
    let r = analyse(&TwoByTwo::new(3, 4, 38, 300), 0.95).expect("analyse");
    let chi = r.chi_square.expect("chi");
    assert!(chi.uncorrected >= 4.0 && chi.yates < 4.0);
    assert!(r.prr.expect("prr").estimate >= 2.0);
    assert!(!r.evans_signal);
    let r = analyse(&TwoByTwo::new(10, 40, 30, 900), 0.95).expect("analyse");
    assert!(r.evans_signal);
}

#[test]
fn undefined_measures_are_none_not_panics() {
    let r = analyse(&TwoByTwo::new(0, 0, 0, 0), 0.95).expect("analyse");
    assert!(r.prr.is_none() && r.ror.is_none() && r.chi_square.is_none());
    assert!(!r.evans_signal);
    let r = analyse(&TwoByTwo::new(5, 0, 3, 100), 0.95).expect("analyse");
    assert!(r.ror.is_none());
    assert!(r.prr.is_some());
}

#[test]
fn unique_reports_are_counted_once() {
    let row = |id: u32, x: &'static str, y: &'static str| ReportRow {
        report_id: id,
        exposure: x,
        diagnosis: y,
        stratum: None::<()>,
    };
    let rows = vec![
        row(1, "noise", "H83.3"),
        row(1, "noise", "H83.3"), // duplicate row of the same report
        row(2, "noise", "H83.3"),
        row(2, "solvents", "H83.3"),
        row(3, "solvents", "F43.2"),
    ];
    let cells = build_pair_cells(&rows, false);
    assert_eq!(cells.len(), 3);
    let c = &cells[0];
    assert_eq!((c.exposure, c.diagnosis, c.n), ("noise", "H83.3", 2));
    // n_x = 2 (reports 1, 2), n_y = 2 (reports 1, 2), total 3 -> E = 4/3
    assert!((c.expected - 4.0 / 3.0).abs() < 1e-12);
    assert_eq!(c.table, TwoByTwo::new(2, 0, 0, 1));
}

#[test]
fn chapman_rejects_impossible_overlap() {
    let err = chapman(10, 5, 6, 0.95).expect_err("m > n2");
    assert!(err.to_string().contains("overlap m"), "{err}");
    let c = chapman(120, 90, 40, 0.95).expect("ok");
    assert!((c.n_hat - (121.0 * 91.0 / 41.0 - 1.0)).abs() < 1e-9);
}

#[test]
fn lucas_reference_value_and_poisson_cusum() {
    let k = lucas_reference_value(2.0, 4.0).expect("k");
    assert!((k - 2.0 / 2f64.ln()).abs() < 1e-12);
    let counts = [2.0, 1.0, 3.0, 2.0, 8.0, 9.0, 7.0];
    let mut ctl = PoissonCusumControl::new(Shift::Ratio(2.0), 5.0);
    ctl.mu0 = Some(2.0);
    let res = poisson_cusum(&counts, &ctl).expect("cusum");
    // k = 2.885: S = 0, 0, 0.115, 0, 5.115, 11.23, 15.35 -> alarms at the last three (no reset)
    assert_eq!(res.iter().filter(|p| p.alarm == Some(true)).count(), 3);
    // categoricalCUSUM convention: restart after each alarm -> 5.115 (alarm), 6.115 (alarm), 4.115
    ctl.convention = ods_stats::aberration::PoissonCusumConvention::CategoricalCusum;
    let res = poisson_cusum(&counts, &ctl).expect("cusum");
    let alarms: Vec<bool> = res.iter().map(|p| p.alarm == Some(true)).collect();
    assert_eq!(alarms, [false, false, false, false, true, true, false]);
    assert!(lucas_reference_value(2.0, 2.0).is_err());
}

#[test]
fn rate_per_100k_scales_counts() {
    let r = rate_per_100k(107, 100_000.0, 0.95, PoissonCiMethod::Exact).expect("rate");
    assert!((r.estimate - 107.0).abs() < 1e-12);
    assert!(r.lower < 107.0 && r.upper > 107.0);
    assert!(rate_per_100k(1, 0.0, 0.95, PoissonCiMethod::Byar).is_err());
}

#[test]
fn detect_dispatches() {
    let counts: Vec<f64> = (0..30).map(|i| f64::from(i % 4)).collect();
    let a = detect(&counts, 52, &MethodControl::Ears(EarsControl::default())).expect("ears");
    let b = ears(&counts, &EarsControl::default()).expect("ears");
    assert_eq!(a, b);
}
