//! Multi-item Gamma-Poisson Shrinker (MGPS; DuMouchel 1999, *Am Stat* 53:177), following the
//! formulas of the R package openEBGM (Canida & Ihrie 2017, *R Journal* 9:499).
//!
//! Model: `N_ij ~ Poisson(lambda_ij E_ij)`, prior
//! `lambda ~ P Gamma(alpha1, beta1) + (1 - P) Gamma(alpha2, beta2)` (shape/rate). Marginally
//! `N` is a two-component negative binomial mixture with `size = alpha_j`,
//! `prob = beta_j / (beta_j + E)` (DuMouchel 1999 eq. 5).
//!
//! * **Likelihood**: like openEBGM `negLL` (`zeroes = FALSE`, `N_star = 1` default), only cells
//!   with `N >= N*` are used and each component is truncated:
//!   `f_j*(n) = f_j(n) / (1 - P(N_j < N*))` (DuMouchel 1999 section 5.2). With `N* = 0` the
//!   plain mixture likelihood over all cells (openEBGM `negLLzero`) is used. Cells with
//!   `N < N*` are ignored.
//! * **Optimiser** (deviation from openEBGM, which calls `nlminb`/`nlm`/`optim`): Nelder-Mead
//!   (Nelder & Mead 1965; coefficients 1, 2, 1/2, 1/2) on the unconstrained parameters
//!   `(ln alpha1, ln beta1, ln alpha2, ln beta2, logit P)`, started from each of the five
//!   starting points of the openEBGM vignette
//!   (alpha1 = 0.2, 0.1, 0.3, 0.5, 0.2; beta1 = 0.1, 0.1, 0.5, 0.3, 0.2;
//!   alpha2 = 2, 10, 6, 12, 5; beta2 = 4, 10, 6, 12, 5; P = 1/3, 0.2, 0.5, 0.8, 0.4 — the first is
//!   DuMouchel's own start) and restarted from its optimum until the objective stops improving;
//!   the start with the smallest negative log-likelihood wins. Different optimisers reach the
//!   same maximum only to optimiser tolerance, so fitted hyperparameters agree with other
//!   implementations to about 1e-3 relative, while the likelihood value agrees much more closely.
//! * **Posterior** given `N = n`: mixture of `Gamma(alpha1 + n, beta1 + E)` and
//!   `Gamma(alpha2 + n, beta2 + E)` with weight `Qn` (eq. 6) on the first; `E[ln lambda]`
//!   (eq. 9) from digamma, `EBlog2 = E[log2 lambda]`, `EBGM = 2^EBlog2` (eq. 10-11).
//! * **EB05 / EB95**: 5th / 95th percentiles of the posterior mixture, found by bisection on its
//!   CDF (as openEBGM `quantBisect`, but to a relative tolerance of 1e-12 instead of openEBGM's
//!   rounding to 2 decimals).

use crate::error::{Result, StatsError};
use crate::special::{digamma, gamma_p, ln_nbinom_pmf, nbinom_sf};

/// Two-component gamma mixture prior (hyperparameters theta of DuMouchel 1999).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaMixture {
    /// Shape of component 1.
    pub alpha1: f64,
    /// Rate of component 1.
    pub beta1: f64,
    /// Shape of component 2.
    pub alpha2: f64,
    /// Rate of component 2.
    pub beta2: f64,
    /// Mixture weight of component 1, in (0, 1).
    pub p: f64,
}

impl GammaMixture {
    /// Validated constructor: shapes and rates finite and > 0, `0 < p < 1`.
    pub fn new(alpha1: f64, beta1: f64, alpha2: f64, beta2: f64, p: f64) -> Result<Self> {
        for (name, v) in [
            ("alpha1", alpha1),
            ("beta1", beta1),
            ("alpha2", alpha2),
            ("beta2", beta2),
        ] {
            crate::error::check_pos(name, v)?;
        }
        if !(p > 0.0 && p < 1.0) {
            return Err(StatsError::InvalidParameter {
                name: "p",
                value: p,
                requirement: "mixture fraction must lie strictly between 0 and 1",
            });
        }
        Ok(Self {
            alpha1,
            beta1,
            alpha2,
            beta2,
            p,
        })
    }

    /// DuMouchel's (1999) starting values: (0.2, 0.1, 2, 4, 1/3).
    pub fn dumouchel_start() -> Self {
        Self {
            alpha1: 0.2,
            beta1: 0.1,
            alpha2: 2.0,
            beta2: 4.0,
            p: 1.0 / 3.0,
        }
    }

    /// The five starting points of the openEBGM vignette (hyperparameter estimation).
    pub fn openebgm_starts() -> Vec<Self> {
        let a1 = [0.2, 0.1, 0.3, 0.5, 0.2];
        let b1 = [0.1, 0.1, 0.5, 0.3, 0.2];
        let a2 = [2.0, 10.0, 6.0, 12.0, 5.0];
        let b2 = [4.0, 10.0, 6.0, 12.0, 5.0];
        let p = [1.0 / 3.0, 0.2, 0.5, 0.8, 0.4];
        (0..5)
            .map(|i| Self {
                alpha1: a1[i],
                beta1: b1[i],
                alpha2: a2[i],
                beta2: b2[i],
                p: p[i],
            })
            .collect()
    }

    fn to_unconstrained(self) -> [f64; 5] {
        [
            self.alpha1.ln(),
            self.beta1.ln(),
            self.alpha2.ln(),
            self.beta2.ln(),
            (self.p / (1.0 - self.p)).ln(),
        ]
    }

    fn from_unconstrained(x: &[f64; 5]) -> Self {
        Self {
            alpha1: x[0].exp(),
            beta1: x[1].exp(),
            alpha2: x[2].exp(),
            beta2: x[3].exp(),
            // The logistic saturates to exactly 0 or 1 in floating point for |x| > ~37 (a
            // degenerate mixture, e.g. one cell); keep the documented 0 < p < 1 so ln(p) and
            // ln(1 - p) stay finite.
            p: (1.0 / (1.0 + (-x[4]).exp())).clamp(f64::EPSILON, 1.0 - f64::EPSILON),
        }
    }
}

/// An (N, E) cell: observed count and expected count (E > 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// Observed count N.
    pub n: f64,
    /// Expected count E.
    pub e: f64,
}

fn check_cells(cells: &[Cell]) -> Result<()> {
    for (index, c) in cells.iter().enumerate() {
        if !(c.n.is_finite() && c.n >= 0.0 && c.n.fract() == 0.0) {
            return Err(StatsError::InvalidInput {
                name: "cells.n",
                index,
                value: c.n,
                requirement: "counts must be whole numbers >= 0",
            });
        }
        if !(c.e.is_finite() && c.e > 0.0) {
            return Err(StatsError::InvalidInput {
                name: "cells.e",
                index,
                value: c.e,
                requirement: "expected counts must be finite and > 0",
            });
        }
    }
    Ok(())
}

fn log_sum_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// Log of the truncation denominator `1 - P(N < n_star)` for NB(size, prob).
fn ln_trunc(size: f64, prob: f64, n_star: u32) -> f64 {
    match n_star {
        0 => 0.0,
        1 => {
            // 1 - prob^size, computed as -expm1(size ln prob)
            (-(size * prob.ln()).exp_m1()).ln()
        }
        k => nbinom_sf(f64::from(k) - 1.0, size, prob).ln(),
    }
}

/// Negative log-likelihood of the hyperparameters (openEBGM `negLL` for `n_star >= 1`,
/// `negLLzero` for `n_star = 0`); cells with `N < n_star` are skipped.
pub fn neg_log_likelihood(prior: &GammaMixture, cells: &[Cell], n_star: u32) -> f64 {
    let mut s = 0.0;
    let lp = prior.p.ln();
    let lq = (-prior.p).ln_1p();
    for c in cells {
        if c.n < f64::from(n_star) {
            continue;
        }
        let p1 = prior.beta1 / (prior.beta1 + c.e);
        let p2 = prior.beta2 / (prior.beta2 + c.e);
        let l1 = ln_nbinom_pmf(c.n, prior.alpha1, p1) - ln_trunc(prior.alpha1, p1, n_star);
        let l2 = ln_nbinom_pmf(c.n, prior.alpha2, p2) - ln_trunc(prior.alpha2, p2, n_star);
        s -= log_sum_exp(lp + l1, lq + l2);
    }
    if s.is_nan() {
        f64::INFINITY
    } else {
        s
    }
}

/// Options of [`fit_prior`].
#[derive(Debug, Clone, PartialEq)]
pub struct MgpsFitOptions {
    /// Minimum count used in the likelihood (openEBGM `N_star`, default 1).
    pub n_star: u32,
    /// Starting points (default: the openEBGM vignette's five).
    pub starts: Vec<GammaMixture>,
    /// Maximum Nelder-Mead iterations per run (default 20,000).
    pub max_iterations: usize,
}

impl Default for MgpsFitOptions {
    fn default() -> Self {
        Self {
            n_star: 1,
            starts: GammaMixture::openebgm_starts(),
            max_iterations: 20_000,
        }
    }
}

/// Result of [`fit_prior`].
#[derive(Debug, Clone, PartialEq)]
pub struct MgpsFit {
    /// Maximum likelihood hyperparameters.
    pub prior: GammaMixture,
    /// Negative log-likelihood at the optimum.
    pub neg_log_likelihood: f64,
    /// Index of the winning starting point.
    pub start_index: usize,
    /// Whether the winning run met the convergence tolerance.
    pub converged: bool,
    /// Cells that entered the likelihood (N >= n_star).
    pub cells_used: usize,
    /// openEBGM's plausibility check: all shapes/rates below 100.
    pub in_bounds: bool,
}

/// Nelder-Mead minimiser (Nelder & Mead 1965; standard coefficients). Returns (x, f, converged).
fn nelder_mead(
    f: &dyn Fn(&[f64; 5]) -> f64,
    x0: [f64; 5],
    step: f64,
    max_iter: usize,
) -> ([f64; 5], f64, bool) {
    let n = 5;
    let mut pts: Vec<[f64; 5]> = vec![x0];
    for i in 0..n {
        let mut p = x0;
        p[i] += step;
        pts.push(p);
    }
    let mut vals: Vec<f64> = pts.iter().map(f).collect();
    let mut converged = false;
    for _ in 0..max_iter {
        // order
        let mut idx: Vec<usize> = (0..=n).collect();
        idx.sort_by(|&a, &b| vals[a].total_cmp(&vals[b]));
        pts = idx.iter().map(|&i| pts[i]).collect();
        vals = idx.iter().map(|&i| vals[i]).collect();
        let (best, worst) = (vals[0], vals[n]);
        let spread = (worst - best).abs();
        let size = pts
            .iter()
            .skip(1)
            .map(|p| {
                p.iter()
                    .zip(&pts[0])
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max)
            })
            .fold(0.0, f64::max);
        if spread <= 1e-13 * (best.abs() + 1e-13) && size < 1e-9 {
            converged = true;
            break;
        }
        let mut centroid = [0.0; 5];
        for p in pts.iter().take(n) {
            for j in 0..n {
                centroid[j] += p[j] / n as f64;
            }
        }
        let along = |t: f64| -> [f64; 5] {
            let mut r = [0.0; 5];
            for j in 0..n {
                r[j] = centroid[j] + t * (pts[n][j] - centroid[j]);
            }
            r
        };
        let xr = along(-1.0);
        let fr = f(&xr);
        if fr < vals[0] {
            let xe = along(-2.0);
            let fe = f(&xe);
            if fe < fr {
                pts[n] = xe;
                vals[n] = fe;
            } else {
                pts[n] = xr;
                vals[n] = fr;
            }
        } else if fr < vals[n - 1] {
            pts[n] = xr;
            vals[n] = fr;
        } else {
            let (xc, fc) = if fr < vals[n] {
                let xc = along(-0.5);
                (xc, f(&xc))
            } else {
                let xc = along(0.5);
                (xc, f(&xc))
            };
            if fc < vals[n].min(fr) {
                pts[n] = xc;
                vals[n] = fc;
            } else {
                // shrink towards the best
                for i in 1..=n {
                    for j in 0..n {
                        pts[i][j] = pts[0][j] + 0.5 * (pts[i][j] - pts[0][j]);
                    }
                    vals[i] = f(&pts[i]);
                }
            }
        }
    }
    let mut bi = 0;
    for i in 1..vals.len() {
        if vals[i] < vals[bi] {
            bi = i;
        }
    }
    (pts[bi], vals[bi], converged)
}

/// Fit the gamma-mixture prior by maximum likelihood; see the module docs for the method.
///
/// Errors if no cell has `N >= n_star`, if cells are invalid, or if no start gives a finite
/// likelihood.
pub fn fit_prior(cells: &[Cell], options: &MgpsFitOptions) -> Result<MgpsFit> {
    check_cells(cells)?;
    let used: Vec<Cell> = cells
        .iter()
        .copied()
        .filter(|c| c.n >= f64::from(options.n_star))
        .collect();
    if used.is_empty() {
        return Err(StatsError::EmptyInput("cells with N >= n_star"));
    }
    if options.starts.is_empty() {
        return Err(StatsError::EmptyInput("starts"));
    }
    let n_star = options.n_star;
    let obj = |x: &[f64; 5]| -> f64 {
        if x.iter().any(|v| !v.is_finite() || v.abs() > 700.0) {
            return f64::INFINITY;
        }
        neg_log_likelihood(&GammaMixture::from_unconstrained(x), &used, n_star)
    };
    let mut best: Option<([f64; 5], f64, bool, usize)> = None;
    for (si, s) in options.starts.iter().enumerate() {
        let mut x = s.to_unconstrained();
        if x.iter().any(|v| !v.is_finite()) {
            continue;
        }
        let mut fx = obj(&x);
        let mut conv = false;
        for round in 0..8 {
            let step = if round == 0 { 0.5 } else { 0.1 };
            let (xn, fnew, c) = nelder_mead(&obj, x, step, options.max_iterations);
            let improved = fx - fnew;
            x = xn;
            fx = fnew;
            conv = c;
            if round > 0 && improved.abs() <= 1e-11 * (fx.abs() + 1e-11) {
                break;
            }
        }
        if fx.is_finite() && best.as_ref().is_none_or(|b| fx < b.1) {
            best = Some((x, fx, conv, si));
        }
    }
    let Some((x, fx, conv, si)) = best else {
        return Err(StatsError::NoConvergence {
            what: "MGPS hyperparameter fit",
            iterations: options.max_iterations,
            hint: "no starting point gave a finite likelihood; supply other starts",
        });
    };
    let prior = GammaMixture::from_unconstrained(&x);
    let in_bounds = [prior.alpha1, prior.beta1, prior.alpha2, prior.beta2]
        .iter()
        .all(|v| *v < 100.0);
    Ok(MgpsFit {
        prior,
        neg_log_likelihood: fx,
        start_index: si,
        converged: conv,
        cells_used: used.len(),
        in_bounds,
    })
}

/// Posterior weight `Qn` of the first component given `N = n` (DuMouchel 1999 eq. 6,
/// openEBGM `Qn`).
pub fn qn(prior: &GammaMixture, n: f64, e: f64) -> f64 {
    let p1 = prior.beta1 / (prior.beta1 + e);
    let p2 = prior.beta2 / (prior.beta2 + e);
    let l1 = prior.p.ln() + ln_nbinom_pmf(n, prior.alpha1, p1);
    let l2 = (-prior.p).ln_1p() + ln_nbinom_pmf(n, prior.alpha2, p2);
    let m = l1.max(l2);
    let a = (l1 - m).exp();
    let b = (l2 - m).exp();
    a / (a + b)
}

/// Posterior CDF at `x` (openEBGM `quantBisect`'s `cdf_error` + cut point).
fn posterior_cdf(prior: &GammaMixture, n: f64, e: f64, q: f64, x: f64) -> f64 {
    q * gamma_p(prior.alpha1 + n, (prior.beta1 + e) * x)
        + (1.0 - q) * gamma_p(prior.alpha2 + n, (prior.beta2 + e) * x)
}

/// EB scores of one cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EbScore {
    /// Observed count.
    pub n: f64,
    /// Expected count.
    pub e: f64,
    /// Relative reporting ratio N/E.
    pub rr: f64,
    /// Posterior weight of component 1.
    pub qn: f64,
    /// E[log2 lambda | N] (DuMouchel eq. 10).
    pub eb_log2: f64,
    /// EBGM = 2^EBlog2.
    pub ebgm: f64,
    /// 5th posterior percentile.
    pub eb05: f64,
    /// 95th posterior percentile.
    pub eb95: f64,
}

/// Posterior quantile `prob` (in (0, 1)) of lambda for a cell, by bisection.
pub fn posterior_quantile(prior: &GammaMixture, n: f64, e: f64, prob: f64) -> Result<f64> {
    if !(prob > 0.0 && prob < 1.0) {
        return Err(StatsError::InvalidParameter {
            name: "prob",
            value: prob,
            requirement: "quantile probability must lie strictly between 0 and 1",
        });
    }
    check_cells(&[Cell { n, e }])?;
    let q = qn(prior, n, e);
    Ok(quantile_with_q(prior, n, e, q, prob))
}

fn quantile_with_q(prior: &GammaMixture, n: f64, e: f64, q: f64, prob: f64) -> f64 {
    let cdf = |x: f64| posterior_cdf(prior, n, e, q, x);
    let mut lo = 0.0;
    let mut hi = 1.0;
    let mut guard = 0;
    while cdf(hi) < prob && guard < 2000 {
        lo = hi;
        hi *= 2.0;
        guard += 1;
    }
    for _ in 0..400 {
        let mid = 0.5 * (lo + hi);
        if cdf(mid) < prob {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-12 * hi {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// EBGM, EB05, EB95 and friends for one cell.
pub fn eb_score(prior: &GammaMixture, n: f64, e: f64) -> Result<EbScore> {
    check_cells(&[Cell { n, e }])?;
    let q = qn(prior, n, e);
    let e1 = digamma(prior.alpha1 + n) - (prior.beta1 + e).ln();
    let e2 = digamma(prior.alpha2 + n) - (prior.beta2 + e).ln();
    let eln = q * e1 + (1.0 - q) * e2;
    let eb_log2 = eln / std::f64::consts::LN_2;
    Ok(EbScore {
        n,
        e,
        rr: n / e,
        qn: q,
        eb_log2,
        ebgm: eln.exp(),
        eb05: quantile_with_q(prior, n, e, q, 0.05),
        eb95: quantile_with_q(prior, n, e, q, 0.95),
    })
}
