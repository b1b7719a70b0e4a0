//! Property tests: no function panics on arbitrary (finite or not) inputs, and basic invariants
//! hold (interval lower <= estimate <= upper, quantile functions invert CDFs, ...).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use ods_stats::aberration::{
    cusum, detect, ears, farrington, farrington_flexible, poisson_cusum, CusumControl, EarsControl,
    EarsMethod, FarringtonControl, FlexibleControl, MethodControl, PoissonCusumControl,
    PoissonCusumConvention, Shift,
};
use ods_stats::capture_recapture::chapman;
use ods_stats::disproportionality::{
    analyse, build_pair_cells, information_component, ReportRow, TwoByTwo,
};
use ods_stats::mgps::{eb_score, fit_prior, Cell, GammaMixture, MgpsFitOptions};
use ods_stats::poisson::{poisson_byar_ci, poisson_exact_ci, rate_per_100k, PoissonCiMethod};
use ods_stats::special;
use ods_stats::standardisation::{funnel_limits, sir};
use proptest::prelude::*;

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e6f64..1e6,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(0.0),
        1 => any::<f64>(),
    ]
}

fn counts(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![8 => (0u32..40).prop_map(f64::from), 1 => 0.0..500.0f64],
        0..max_len,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn poisson_intervals_contain_the_count(o in 0u64..2_000_000, level in 0.5f64..0.9999) {
        for ci in [poisson_exact_ci(o, level), poisson_byar_ci(o, level)] {
            let ci = ci.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(ci.lower >= 0.0);
            prop_assert!(ci.lower <= o as f64 + 1e-9 * o as f64, "{ci:?} o={o}");
            prop_assert!(ci.upper >= o as f64, "{ci:?} o={o}");
        }
    }

    #[test]
    fn scalar_functions_never_panic(a in any_f64(), b in any_f64(), c in any_f64(), n in any::<u64>(), m in any::<u64>()) {
        let _ = poisson_exact_ci(n, a);
        let _ = poisson_byar_ci(n, a);
        let _ = rate_per_100k(n, a, b, PoissonCiMethod::Exact);
        let _ = sir(n, a, b);
        let _ = funnel_limits(a);
        let _ = chapman(n, m, n.min(m), 0.95);
        let _ = chapman(n, m, n, a);
        let _ = information_component(a, b, c);
        let _ = GammaMixture::new(a, b, c, a, b);
        let _ = special::gamma_quantile(a, b);
        let _ = special::gamma_quantile_upper(a, b);
        let _ = special::normal_quantile(a);
        let _ = special::nbinom_quantile(a, b, c);
        let _ = special::poisson_quantile(a, b);
        let _ = special::beta_inc(a, b, c);
        let _ = special::t_two_sided_p(a, b);
        let _ = special::digamma(a);
        let _ = special::ln_gamma(a);
        let _ = special::chi2_quantile(a, b);
    }

    #[test]
    fn gamma_quantile_inverts_cdf(a in 0.01f64..1e4, p in 1e-10f64..(1.0 - 1e-10)) {
        let x = special::gamma_quantile(a, p);
        prop_assert!(x.is_finite() && x >= 0.0);
        let back = special::gamma_p(a, x);
        prop_assert!((back - p).abs() <= 1e-9 * p.max(1e-3), "a={a} p={p} x={x} back={back}");
    }

    #[test]
    fn discrete_quantiles_are_smallest_k(p in 0.001f64..0.999, mean in 0.01f64..500.0, phi in 1.01f64..8.0) {
        let size = mean / (phi - 1.0);
        let prob = 1.0 / phi;
        let k = special::nbinom_quantile(p, size, prob);
        prop_assert!(special::nbinom_cdf(k, size, prob) >= p * (1.0 - 1e-12));
        if k > 0.0 {
            prop_assert!(special::nbinom_cdf(k - 1.0, size, prob) < p);
        }
        let k = special::poisson_quantile(p, mean);
        prop_assert!(special::poisson_cdf(k, mean) >= p * (1.0 - 1e-12));
        if k > 0.0 {
            prop_assert!(special::poisson_cdf(k - 1.0, mean) < p);
        }
    }

    #[test]
    fn sir_and_funnel_invariants(o in 0u64..5000, e in 0.01f64..5000.0) {
        let s = sir(o, e, 0.95).map_err(|er| TestCaseError::fail(er.to_string()))?;
        prop_assert!(s.lower <= s.ratio && s.ratio <= s.upper);
        let f = funnel_limits(e).map_err(|er| TestCaseError::fail(er.to_string()))?;
        prop_assert!(f.l95.lower_count <= f.l95.upper_count);
        prop_assert!(f.l998.lower_count <= f.l95.lower_count + 1e-9);
        prop_assert!(f.l998.upper_count + 1e-9 >= f.l95.upper_count);
    }

    #[test]
    fn chapman_invariants(n1 in 0u64..100_000, n2 in 0u64..100_000, mfrac in 0.0f64..=1.0) {
        let m = ((n1.min(n2) as f64) * mfrac).floor() as u64;
        let c = chapman(n1, n2, m, 0.95).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let distinct = (n1 + n2 - m) as f64;
        prop_assert!(c.n_hat >= distinct - 1e-9 * distinct.max(1.0));
        prop_assert!(c.wald_lower <= c.n_hat.max(distinct) && c.n_hat <= c.wald_upper + 1e-9);
        prop_assert!(c.log_lower <= c.n_hat + 1e-9 * c.n_hat.max(1.0) && c.n_hat <= c.log_upper + 1e-9 * c.n_hat.max(1.0));
        prop_assert!(c.log_lower >= distinct - 1e-9 * distinct.max(1.0));
    }

    #[test]
    fn table_invariants(a in 0u64..5000, b in 0u64..50_000, c in 0u64..50_000, d in 0u64..1_000_000) {
        let t = TwoByTwo::new(a, b, c, d);
        let r = analyse(&t, 0.95).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let Some(p) = r.prr {
            prop_assert!(p.lower <= p.estimate && p.estimate <= p.upper);
        }
        if let Some(o) = r.ror {
            prop_assert!(o.lower <= o.estimate && o.estimate <= o.upper);
        }
        if let Some(x) = r.chi_square {
            prop_assert!(x.yates <= x.uncorrected + 1e-9 * x.uncorrected.max(1.0));
            prop_assert!(x.yates >= 0.0);
        }
        prop_assert!(r.ic.ic_lower <= r.ic.ic && r.ic.ic <= r.ic.ic_upper);
        if r.evans_signal {
            prop_assert!(a >= 3);
        }
    }

    #[test]
    fn eb_scores_are_ordered(n in 0u32..500, e in 0.001f64..500.0,
                             a1 in 0.01f64..20.0, b1 in 0.01f64..20.0, a2 in 0.01f64..20.0,
                             b2 in 0.01f64..20.0, p in 0.01f64..0.99) {
        let prior = GammaMixture::new(a1, b1, a2, b2, p).map_err(|er| TestCaseError::fail(er.to_string()))?;
        let s = eb_score(&prior, f64::from(n), e).map_err(|er| TestCaseError::fail(er.to_string()))?;
        prop_assert!(s.ebgm.is_finite() && s.ebgm > 0.0);
        prop_assert!(s.eb05 <= s.eb95);
        prop_assert!((0.0..=1.0).contains(&s.qn));
    }

    #[test]
    fn pair_cells_are_consistent(rows in prop::collection::vec((0u8..30, 0u8..6, 0u8..8, 0u8..3), 0..200)) {
        let rows: Vec<ReportRow<u8, u8, u8, u8>> = rows
            .into_iter()
            .map(|(id, x, y, s)| ReportRow { report_id: id, exposure: x, diagnosis: y, stratum: Some(s) })
            .collect();
        let cells = build_pair_cells(&rows, true);
        for c in &cells {
            prop_assert!(c.n >= 1);
            prop_assert_eq!(c.table.a, c.n);
            prop_assert!(c.expected > 0.0);
        }
    }

    #[test]
    fn ears_and_cusum_never_panic(xs in counts(60), bad in any_f64(), pos in 0usize..60, base in 0usize..12) {
        let mut ys = xs.clone();
        for m in [EarsMethod::C1, EarsMethod::C2, EarsMethod::C3] {
            let ctl = EarsControl { method: m, baseline: base, ..EarsControl::default() };
            if let Ok(points) = ears(&xs, &ctl) {
                for p in points {
                    if let (Some(ub), Some(al)) = (p.upperbound, p.alarm) {
                        prop_assert_eq!(al, p.observed > ub);
                    }
                }
            }
        }
        let _ = cusum(&xs, &CusumControl { range: Some(xs.len() / 2..xs.len()), ..CusumControl::default() });
        let _ = poisson_cusum(&xs, &PoissonCusumControl::new(Shift::Ratio(2.0), 4.0));
        let mut pc = PoissonCusumControl::new(Shift::Sd(1.0), 3.0);
        pc.convention = PoissonCusumConvention::CategoricalCusum;
        pc.range = Some(xs.len() / 3..xs.len());
        let _ = poisson_cusum(&xs, &pc);
        if !ys.is_empty() {
            let i = pos % ys.len();
            ys[i] = bad;
            let _ = ears(&ys, &EarsControl::default());
            let _ = cusum(&ys, &CusumControl::default());
        }
    }
}

proptest! {
    // Farrington fits one GLM per time point: fewer, shorter cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn farrington_methods_never_panic(xs in counts(140), b in 1usize..4, w in 0usize..4, freq in prop_oneof![Just(12usize), Just(26usize), Just(52usize)]) {
        let len = xs.len();
        let range = if len > 10 { Some(len - 8..len) } else { None };
        let fc = FarringtonControl { b, w, range: range.clone(), ..FarringtonControl::default() };
        if let Ok(points) = farrington(&xs, freq, &fc) {
            for p in points {
                let ub = p.upperbound.unwrap_or(0.0);
                prop_assert!(ub >= 0.0 || ub.is_nan());
            }
        }
        let flex = FlexibleControl { b, w, range: range.clone(), ..FlexibleControl::default() };
        let _ = farrington_flexible(&xs, freq, &flex);
        let nou = FlexibleControl { b, w, range, no_periods: 4, past_weeks_not_included: Some(w + 2), ..FlexibleControl::noufaily() };
        let _ = farrington_flexible(&xs, freq, &nou);
        let _ = detect(&xs, freq, &MethodControl::Ears(EarsControl::default()));
    }

    #[test]
    fn mgps_fit_never_panics(cells in prop::collection::vec((0u32..30, 0.01f64..40.0), 1..40)) {
        let cells: Vec<Cell> = cells.into_iter().map(|(n, e)| Cell { n: f64::from(n), e }).collect();
        let opts = MgpsFitOptions { max_iterations: 400, ..MgpsFitOptions::default() };
        if let Ok(fit) = fit_prior(&cells, &opts) {
            prop_assert!(fit.neg_log_likelihood.is_finite());
            prop_assert!(fit.prior.p > 0.0 && fit.prior.p < 1.0);
        }
    }
}
