//! Quasi-Poisson GLM with log link, fitted exactly as R's `glm.fit` does it.
//!
//! The Farrington methods must reproduce R `surveillance` to 1e-4, and that depends on details
//! of `stats::glm.fit` (R 4.x, `src/library/stats/R/glm.R`), which are replicated here:
//!
//! * start `mustart = y + 0.1` (the `poisson`/`quasipoisson` `initialize` expression),
//!   `eta = log(mustart)`;
//! * log link with R's clamps `linkinv(eta) = max(exp(eta), DBL_EPSILON)`,
//!   `mu.eta(eta) = max(exp(eta), DBL_EPSILON)`; variance `V(mu) = mu`;
//! * IRLS: working response `z = eta + (y - mu)/mu.eta`, working weights
//!   `w = prior * mu.eta^2 / V(mu)`, weighted least squares by Householder QR with R's
//!   `dqrdc2` rule for aliased columns (a column whose remaining norm is below
//!   `tol = min(1e-7, epsilon/1000) = 1e-11` times its original norm is dropped);
//! * convergence when `|dev - devold| / (|dev| + 0.1) < 1e-8`, at most 25 iterations, with
//!   step halving when the deviance is not finite;
//! * the reported working weights and the QR (used by `summary.glm`, `hatvalues` and
//!   `predict.glm(se.fit = TRUE)`) are those of the **last iteration's start**, while fitted
//!   values and working residuals `(y - mu)/mu` are from the final coefficients; this mix is
//!   what R reports and is kept on purpose;
//! * `df.residual = #(prior weight != 0) - rank`, dispersion
//!   `sum(w * r^2)[w > 0] / df.residual` (`summary.glm`).

use crate::special::t_two_sided_p;

const DBL_EPSILON: f64 = f64::EPSILON;

/// A fitted quasi-Poisson GLM.
#[derive(Debug, Clone)]
pub(crate) struct GlmFit {
    /// Coefficients in the column order of the design; aliased columns hold NaN.
    pub coefficients: Vec<f64>,
    /// Which columns were dropped as aliased.
    pub aliased: Vec<bool>,
    /// Fitted means.
    pub fitted: Vec<f64>,
    /// Working residuals (y - mu) / mu.eta(eta).
    pub working_residuals: Vec<f64>,
    /// Working weights from the last IRLS iteration (R `fit$weights`).
    pub working_weights: Vec<f64>,
    /// Residual degrees of freedom.
    pub df_residual: f64,
    /// Whether IRLS converged.
    pub converged: bool,
    /// Unscaled covariance (R'R)^-1 over all columns (NaN rows/cols for aliased).
    pub cov_unscaled: Vec<Vec<f64>>,
    /// Hat values (leverages) of the weighted fit.
    pub hat: Vec<f64>,
    /// Response.
    pub y: Vec<f64>,
}

impl GlmFit {
    /// `summary.glm` dispersion with the given weights (normally `working_weights`).
    pub fn dispersion_with(&self, weights: &[f64]) -> f64 {
        if self.df_residual <= 0.0 {
            return f64::NAN;
        }
        let s: f64 = weights
            .iter()
            .zip(&self.working_residuals)
            .filter(|(w, _)| **w > 0.0)
            .map(|(w, r)| w * r * r)
            .sum();
        s / self.df_residual
    }

    /// `summary.glm(fit)$dispersion`.
    pub fn dispersion(&self) -> f64 {
        self.dispersion_with(&self.working_weights)
    }

    /// Linear predictor at a new design row.
    pub fn eta_at(&self, x0: &[f64]) -> f64 {
        self.coefficients
            .iter()
            .zip(x0)
            .zip(&self.aliased)
            .filter(|(_, a)| !**a)
            .map(|((b, x), _)| b * x)
            .sum()
    }

    /// `sqrt(x0' (R'R)^-1 x0)`: the unscaled standard error of the linear predictor.
    pub fn se_eta_unscaled(&self, x0: &[f64]) -> f64 {
        let p = x0.len();
        let mut s = 0.0;
        for i in 0..p {
            if self.aliased[i] {
                continue;
            }
            for j in 0..p {
                if self.aliased[j] {
                    continue;
                }
                s += x0[i] * self.cov_unscaled[i][j] * x0[j];
            }
        }
        s.max(0.0).sqrt()
    }

    /// Two-sided t-test p-value of coefficient `j` with the given dispersion
    /// (`summary.glm(...)$coefficients[j, 4]` for a quasi family).
    pub fn coef_p_value(&self, j: usize, dispersion: f64) -> f64 {
        if self.aliased.get(j).copied().unwrap_or(true) {
            return f64::NAN;
        }
        let se = (dispersion * self.cov_unscaled[j][j]).sqrt();
        let t = self.coefficients[j] / se;
        t_two_sided_p(t, self.df_residual)
    }
}

fn linkinv(eta: f64) -> f64 {
    eta.exp().max(DBL_EPSILON)
}

fn mu_eta(eta: f64) -> f64 {
    eta.exp().max(DBL_EPSILON)
}

/// Poisson unit deviance contributions, R `poisson()$dev.resids`.
fn deviance(y: &[f64], mu: &[f64], wt: &[f64]) -> f64 {
    y.iter()
        .zip(mu)
        .zip(wt)
        .map(|((&y, &m), &w)| {
            let r = if y > 0.0 {
                w * (y * (y / m).ln() - (y - m))
            } else {
                m * w
            };
            2.0 * r
        })
        .sum()
}

/// Result of a weighted least-squares solve.
struct Wls {
    /// Column indices kept (not aliased), in order.
    kept: Vec<usize>,
    /// Upper-triangular R (kept x kept).
    r: Vec<Vec<f64>>,
    /// Coefficients for the kept columns.
    coef: Vec<f64>,
}

/// Householder QR least squares of `xw` (n rows x p cols) on `zw`, with the LINPACK `dqrdc2`
/// limited-pivoting rule: columns whose norm after projection falls below `tol` times the
/// original norm are treated as aliased.
fn wls(xw: &[Vec<f64>], zw: &[f64], tol: f64) -> Wls {
    let n = xw.len();
    let p = if n > 0 { xw[0].len() } else { 0 };
    // column-major copy
    let mut cols: Vec<Vec<f64>> = (0..p).map(|j| xw.iter().map(|r| r[j]).collect()).collect();
    let mut rhs = zw.to_vec();
    let orig_norm: Vec<f64> = cols
        .iter()
        .map(|c| c.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    let mut kept: Vec<usize> = Vec::new();
    let mut k = 0usize; // next pivot row
    for j in 0..p {
        if k >= n {
            break;
        }
        let norm: f64 = cols[j][k..].iter().map(|v| v * v).sum::<f64>().sqrt();
        if !(norm > tol * orig_norm[j]) || norm == 0.0 {
            continue; // aliased
        }
        // Householder vector for column j rows k..n
        let alpha = if cols[j][k] > 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = cols[j][k..].to_vec();
        v[0] -= alpha;
        let vnorm2: f64 = v.iter().map(|x| x * x).sum();
        if vnorm2 > 0.0 {
            let apply = |c: &mut Vec<f64>| {
                let dot: f64 = v.iter().zip(&c[k..]).map(|(a, b)| a * b).sum();
                let f = 2.0 * dot / vnorm2;
                for (ci, vi) in c[k..].iter_mut().zip(&v) {
                    *ci -= f * vi;
                }
            };
            for jj in j..p {
                apply(&mut cols[jj]);
            }
            apply(&mut rhs);
        }
        kept.push(j);
        k += 1;
    }
    let rank = kept.len();
    let mut r = vec![vec![0.0; rank]; rank];
    for (a, &ja) in kept.iter().enumerate() {
        for (b, row) in r.iter_mut().enumerate().take(rank) {
            if b <= a {
                row[a] = cols[ja][b];
            }
        }
    }
    // back substitution R c = Q'z
    let mut coef = vec![0.0; rank];
    for i in (0..rank).rev() {
        let mut s = rhs[i];
        for jx in (i + 1)..rank {
            s -= r[i][jx] * coef[jx];
        }
        coef[i] = s / r[i][i];
    }
    Wls { kept, r, coef }
}

/// Invert an upper-triangular matrix.
fn inv_upper(r: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = r.len();
    let mut inv = vec![vec![0.0; n]; n];
    for i in (0..n).rev() {
        inv[i][i] = 1.0 / r[i][i];
        for j in (i + 1)..n {
            let mut s = 0.0;
            for (kk, inv_row) in inv.iter().enumerate().take(j + 1).skip(i + 1) {
                s += r[i][kk] * inv_row[j];
            }
            inv[i][j] = -s / r[i][i];
        }
    }
    inv
}

/// Fit a quasi-Poisson log-link GLM (R `glm.fit(x, y, weights, family = quasipoisson())`).
///
/// `x` rows are design rows (first column normally the intercept). Returns `None` only when
/// the weighted least-squares problem is degenerate (no usable rows / non-finite coefficients,
/// where R stops with an error).
pub(crate) fn glm_quasipoisson(x: &[Vec<f64>], y: &[f64], prior: &[f64]) -> Option<GlmFit> {
    let n = y.len();
    if n == 0 || x.len() != n || prior.len() != n {
        return None;
    }
    let p = x[0].len();
    let maxit = 25;
    let epsilon = 1e-8;
    let tol = (1e-7f64).min(epsilon / 1000.0);

    let mut eta: Vec<f64> = y.iter().map(|&v| (v + 0.1).ln()).collect();
    let mut mu: Vec<f64> = eta.iter().map(|&e| linkinv(e)).collect();
    let mut devold = deviance(y, &mu, prior);
    let mut coefold: Option<Vec<f64>> = None;
    let mut coef = vec![0.0; p];
    let mut converged = false;
    let mut last_w = vec![0.0; n];
    let mut last_wls: Option<Wls> = None;

    for _iter in 0..maxit {
        let mev: Vec<f64> = eta.iter().map(|&e| mu_eta(e)).collect();
        let good: Vec<bool> = (0..n).map(|i| prior[i] > 0.0 && mev[i] != 0.0).collect();
        let mut xw = Vec::new();
        let mut zw = Vec::new();
        let mut wvec = vec![0.0; n];
        for i in 0..n {
            if !good[i] {
                continue;
            }
            let z = eta[i] + (y[i] - mu[i]) / mev[i];
            let w = (prior[i] * mev[i] * mev[i] / mu[i]).sqrt();
            wvec[i] = w;
            xw.push(x[i].iter().map(|v| v * w).collect::<Vec<f64>>());
            zw.push(z * w);
        }
        if xw.is_empty() {
            return None;
        }
        let fit = wls(&xw, &zw, tol);
        if fit.coef.iter().any(|c| !c.is_finite()) {
            return None;
        }
        let mut start = vec![0.0; p];
        for (c, &j) in fit.coef.iter().zip(&fit.kept) {
            start[j] = *c;
        }
        let lin = |s: &[f64]| -> Vec<f64> {
            x.iter()
                .map(|row| row.iter().zip(s).map(|(a, b)| a * b).sum())
                .collect()
        };
        eta = lin(&start);
        mu = eta.iter().map(|&e| linkinv(e)).collect();
        let mut dev = deviance(y, &mu, prior);
        // step halving on non-finite deviance
        let mut ii = 0;
        while !dev.is_finite() || mu.iter().any(|m| !m.is_finite()) {
            let old = coefold.as_ref()?;
            ii += 1;
            if ii > maxit {
                return None;
            }
            for j in 0..p {
                start[j] = (start[j] + old[j]) / 2.0;
            }
            eta = lin(&start);
            mu = eta.iter().map(|&e| linkinv(e)).collect();
            dev = deviance(y, &mu, prior);
        }
        last_w = wvec;
        last_wls = Some(fit);
        if (dev - devold).abs() / (dev.abs() + 0.1) < epsilon {
            converged = true;
            coef = start;
            break;
        }
        devold = dev;
        coef = start.clone();
        coefold = Some(start);
    }
    let fit = last_wls?;
    let mut aliased = vec![true; p];
    for &j in &fit.kept {
        aliased[j] = false;
    }
    let mut coefficients = coef;
    for j in 0..p {
        if aliased[j] {
            coefficients[j] = f64::NAN;
        }
    }
    let rinv = inv_upper(&fit.r);
    let rank = fit.kept.len();
    let mut cov = vec![vec![f64::NAN; p]; p];
    for a in 0..rank {
        for b in 0..rank {
            // (R'R)^-1 = R^-1 R^-T
            let s: f64 = (0..rank).map(|kk| rinv[a][kk] * rinv[b][kk]).sum();
            cov[fit.kept[a]][fit.kept[b]] = s;
        }
    }
    // hat values: || R^-T (w_i x_i[kept]) ||^2
    let mut hat = vec![0.0; n];
    for i in 0..n {
        if last_w[i] == 0.0 {
            continue;
        }
        let xi: Vec<f64> = fit.kept.iter().map(|&j| x[i][j] * last_w[i]).collect();
        // solve R^T u = xi (forward substitution)
        let mut u = vec![0.0; rank];
        for a in 0..rank {
            let mut s = xi[a];
            for b in 0..a {
                s -= fit.r[b][a] * u[b];
            }
            u[a] = s / fit.r[a][a];
        }
        let h: f64 = u.iter().map(|v| v * v).sum();
        hat[i] = if h > 1.0 - 10.0 * DBL_EPSILON { 1.0 } else { h };
    }
    let working_residuals: Vec<f64> = (0..n).map(|i| (y[i] - mu[i]) / mu_eta(eta[i])).collect();
    let working_weights: Vec<f64> = last_w.iter().map(|w| w * w).collect();
    let n_ok = prior.iter().filter(|w| **w != 0.0).count();
    Some(GlmFit {
        coefficients,
        aliased,
        fitted: mu,
        working_residuals,
        working_weights,
        df_residual: n_ok as f64 - rank as f64,
        converged,
        cov_unscaled: cov,
        hat,
        y: y.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intercept_only_fit_is_mean() {
        let y = [1.0, 2.0, 3.0, 4.0, 10.0];
        let x: Vec<Vec<f64>> = y.iter().map(|_| vec![1.0]).collect();
        let w = vec![1.0; 5];
        let f = glm_quasipoisson(&x, &y, &w).expect("fit");
        assert!(f.converged);
        assert!((f.fitted[0] - 4.0).abs() < 1e-8);
        assert!((f.coefficients[0] - 4f64.ln()).abs() < 1e-8);
    }

    #[test]
    fn aliased_column_detected() {
        let y = [1.0, 2.0, 3.0, 4.0];
        let x: Vec<Vec<f64>> = (0..4)
            .map(|i| vec![1.0, i as f64, 2.0 * i as f64])
            .collect();
        let f = glm_quasipoisson(&x, &y, &[1.0; 4]).expect("fit");
        assert!(f.aliased[2]);
        assert!(!f.aliased[1]);
    }
}
