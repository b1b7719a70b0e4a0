//! Method options: names, defaults, parsing and validation.
//!
//! Options are `(name, value)` string pairs, as they come from a command line (`--b 5`). Names
//! follow the `control` names of R `surveillance` (and of `poisson.test` / openEBGM for the
//! other methods) in kebab case: `noPeriods` is `no-periods`. R spellings are accepted too
//! (`noPeriods`, `no_periods`, `--no-periods` all name the same option). Every option has the
//! default of R (which `ods-stats` also uses); [`Method::options`] lists them.
//!
//! [`Options::set`] checks that the name is a known option; [`Options::validate`] (called by
//! [`run`](crate::run) before any input is read) checks that every option applies to the
//! method and that its value is valid for it.

use ods_stats::aberration::{
    CusumControl, CusumMean, CusumTransform, EarsControl, EarsMethod, FarringtonControl,
    FlexibleControl, PowerTransform, ThresholdMethod,
};
use ods_stats::mgps::GammaMixture;
use ods_stats::poisson::PoissonCiMethod;

use crate::error::{AnalyzeError, Result};
use crate::Method;

/// Description of one option of a method, for help text and documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    /// Kebab-case name, e.g. `"no-periods"` (on the command line `--no-periods`).
    pub name: &'static str,
    /// The name in the reference implementation, e.g. `"noPeriods"` (R `control$noPeriods`).
    pub r_name: &'static str,
    /// The default, as text (what R uses when the option is not given).
    pub default: &'static str,
    /// What the option means and which values it takes.
    pub help: &'static str,
}

const fn spec(
    name: &'static str,
    r_name: &'static str,
    default: &'static str,
    help: &'static str,
) -> OptionSpec {
    OptionSpec {
        name,
        r_name,
        default,
        help,
    }
}

const RANGE_HELP: &str = "rows to evaluate, `START:END` or `START:` (to the last row), each a \
    one-based row number (1 = first data row, as R's control$range) or a date of the series; \
    rows outside the range get empty results";

const EARS_C12: [OptionSpec; 4] = [
    spec(
        "baseline",
        "baseline",
        "7",
        "number of reference periods, a whole number >= 3",
    ),
    spec(
        "alpha",
        "alpha",
        "0.001",
        "one-sided level: upperbound = mean + qnorm(1 - alpha) * sigma; in (0, 1)",
    ),
    spec(
        "min-sigma",
        "minSigma",
        "0",
        "lower bound for the baseline standard deviation, >= 0",
    ),
    spec(
        "range",
        "range",
        "first row with a full baseline to the last row",
        RANGE_HELP,
    ),
];

const EARS_C3: [OptionSpec; 4] = [
    EARS_C12[0],
    spec(
        "alpha",
        "alpha",
        "0.025",
        "one-sided level of the C3 threshold; in (0, 1)",
    ),
    EARS_C12[2],
    EARS_C12[3],
];

const B_HELP: &str = "number of years back for reference values, a whole number >= 1";
const W_HELP: &str = "half-width of the reference window around each reference period, >= 0";
const LIMIT54_HELP: &str = "`CASES,PERIOD`: no alarm when fewer than CASES cases in the last \
    PERIOD rows (R c(5,4))";
const POWERTRANS_HELP: &str = "power transformation of the threshold: 2/3, 1/2 or none";

const FARRINGTON: [OptionSpec; 8] = [
    spec("b", "b", "5", B_HELP),
    spec("w", "w", "3", W_HELP),
    spec(
        "reweight",
        "reweight",
        "true",
        "down-weight outlying reference values: true or false",
    ),
    spec(
        "alpha",
        "alpha",
        "0.05",
        "two-sided level of the prediction interval (threshold uses qnorm(1 - alpha/2)); in (0, 1)",
    ),
    spec(
        "trend",
        "trend",
        "true",
        "fit a time trend (kept only when significant): true or false",
    ),
    spec("limit54", "limit54", "5,4", LIMIT54_HELP),
    spec("powertrans", "powertrans", "2/3", POWERTRANS_HELP),
    spec(
        "range",
        "range",
        "row b*frequency - w to the last row",
        RANGE_HELP,
    ),
];

const FLEXIBLE: [OptionSpec; 13] = [
    spec("b", "b", "5", B_HELP),
    spec("w", "w", "3", W_HELP),
    spec(
        "reweight",
        "reweight",
        "true",
        "down-weight outlying reference values: true or false",
    ),
    spec(
        "weights-threshold",
        "weightsThreshold",
        "2.58",
        "Anscombe residual above which a reference value is down-weighted, > 0",
    ),
    spec(
        "alpha",
        "alpha",
        "0.05",
        "one-sided level of the threshold; in (0, 1)",
    ),
    spec(
        "trend",
        "trend",
        "true",
        "fit a time trend (kept only when significant): true or false",
    ),
    spec(
        "p-threshold-trend",
        "pThresholdTrend",
        "0.05",
        "p-value below which the trend is kept; in (0, 1)",
    ),
    spec("limit54", "limit54", "5,4", LIMIT54_HELP),
    spec(
        "powertrans",
        "powertrans",
        "2/3",
        "power transformation for threshold-method delta: 2/3, 1/2 or none",
    ),
    spec(
        "no-periods",
        "noPeriods",
        "1",
        "number of seasonal factor levels (1 = none; Noufaily et al. recommend 10), >= 1",
    ),
    spec(
        "past-weeks-not-included",
        "pastWeeksNotIncluded",
        "w",
        "most recent periods left out of the fit (Noufaily et al. recommend 26), >= 0",
    ),
    spec(
        "threshold-method",
        "thresholdMethod",
        "delta",
        "delta (Farrington), nbPlugin (Noufaily et al. 2013) or muan",
    ),
    spec(
        "range",
        "range",
        "row b*frequency + w + 1 to the last row",
        RANGE_HELP,
    ),
];

const CUSUM: [OptionSpec; 6] = [
    spec("k", "k", "1.04", "reference value, a finite number"),
    spec("h", "h", "2.26", "decision interval, a finite number"),
    spec(
        "m",
        "m",
        "mean of the rows before the range",
        "in-control mean, a number >= 0",
    ),
    spec(
        "trans",
        "trans",
        "standard",
        "standardisation: standard, rossi, anscombe, anscombe2nd, pearsonNegBin or none",
    ),
    spec(
        "alpha",
        "alpha",
        "0.1",
        "overdispersion of trans=pearsonNegBin (only with that trans), >= 0",
    ),
    spec(
        "range",
        "range",
        "none: required unless m is given (then all rows), as in R",
        RANGE_HELP,
    ),
];

const LEVEL: OptionSpec = spec(
    "level",
    "conf.level",
    "0.95",
    "two-sided confidence level; in (0, 1)",
);

const POISSON_CI: [OptionSpec; 3] = [
    LEVEL,
    spec(
        "ci-method",
        "poisson.test (exact)",
        "exact",
        "exact (Garwood; R poisson.test) or byar (Byar's approximation)",
    ),
    spec(
        "per",
        "per",
        "100000",
        "rates (with a population column) are cases per this many population units, > 0",
    ),
];

const LEVEL_ONLY: [OptionSpec; 1] = [LEVEL];

const EBGM: [OptionSpec; 3] = [
    spec(
        "n-star",
        "N_star",
        "1",
        "smallest count used to fit the prior (openEBGM N_star), a whole number >= 0",
    ),
    spec(
        "stratify",
        "stratify",
        "false",
        "stratified expected counts over the `stratum` column (openEBGM processRaw): true or false",
    ),
    spec(
        "prior",
        "theta",
        "fitted by maximum likelihood",
        "fixed hyperparameters `alpha1,beta1,alpha2,beta2,p` instead of fitting (e.g. \
         openEBGM's estimates, to compare scores)",
    ),
];

impl Method {
    /// The options of the method with their R names and defaults.
    pub fn options(self) -> &'static [OptionSpec] {
        match self {
            Method::EarsC1 | Method::EarsC2 => &EARS_C12,
            Method::EarsC3 => &EARS_C3,
            Method::Farrington => &FARRINGTON,
            Method::FarringtonFlexible => &FLEXIBLE,
            Method::Cusum => &CUSUM,
            Method::PoissonCi => &POISSON_CI,
            Method::Sir | Method::Chapman | Method::Prr | Method::Ror | Method::Ic => &LEVEL_ONLY,
            Method::Ebgm => &EBGM,
        }
    }
}

/// All option names of all methods, sorted, without duplicates.
pub fn all_option_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Method::ALL
        .iter()
        .flat_map(|m| m.options().iter().map(|s| s.name))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Turn `--noPeriods`, `no_periods`, `N_star` or `conf.level` into the kebab-case name.
fn canonical(name: &str) -> String {
    let name = name.trim().trim_start_matches('-');
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for ch in name.chars() {
        if ch == '_' || ch == '.' || ch == '-' {
            out.push('-');
            prev_lower = false;
        } else if ch.is_ascii_uppercase() {
            if prev_lower {
                out.push('-');
            }
            out.push(ch.to_ascii_lowercase());
            prev_lower = false;
        } else {
            out.push(ch);
            prev_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
        }
    }
    match out.as_str() {
        "conf-level" => "level".to_string(),
        _ => out,
    }
}

/// Method options as `(name, value)` string pairs, as they come from a command line
/// (`--b 5`).
///
/// Names are the `control` names of R `surveillance` (and of `poisson.test` / openEBGM for the
/// other methods) in kebab case; R's spellings are accepted too (`noPeriods`, `no_periods` and
/// `--no-periods` name the same option). Options not set take R's defaults, listed with
/// [`Method::options`]. [`Options::set`] checks the name; [`Options::validate`] (which
/// [`run`](crate::run) calls before reading any input) checks that each option applies to the
/// method and that its value is valid.
///
/// ```
/// use ods_analyze::{Method, Options};
/// let mut o = Options::new();
/// o.set("b", "3")?.set("noPeriods", "10")?;
/// o.validate(Method::FarringtonFlexible)?;
/// assert!(o.validate(Method::EarsC1).is_err()); // `b` is not an EARS option
/// # Ok::<(), ods_analyze::AnalyzeError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// (canonical name, value), in the order first set.
    values: Vec<(String, String)>,
}

impl Options {
    /// No options: every method runs with R's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set option `name` (kebab case, or R's camelCase / snake_case spelling, with or without
    /// leading `--`) to `value`. Setting an option again replaces the earlier value.
    ///
    /// Errors with [`AnalyzeError::UnknownOption`] if no method has an option of that name.
    /// Values are checked by [`Options::validate`], because what is valid depends on the method.
    pub fn set(&mut self, name: &str, value: &str) -> Result<&mut Self> {
        let canon = canonical(name);
        let known = all_option_names();
        if !known.contains(&canon.as_str()) {
            return Err(AnalyzeError::UnknownOption {
                name: name.to_string(),
                known: known.join(", "),
            });
        }
        let value = value.trim().to_string();
        match self.values.iter_mut().find(|(n, _)| *n == canon) {
            Some(slot) => slot.1 = value,
            None => self.values.push((canon, value)),
        }
        Ok(self)
    }

    /// Build from `(name, value)` pairs; see [`Options::set`].
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut o = Options::new();
        for (k, v) in pairs {
            o.set(k.as_ref(), v.as_ref())?;
        }
        Ok(o)
    }

    /// The value set for an option (any spelling of its name), if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        let canon = canonical(name);
        self.values
            .iter()
            .find(|(n, _)| *n == canon)
            .map(|(_, v)| v.as_str())
    }

    /// The options set, as (kebab-case name, value), in the order first set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Check that every option set applies to `method` and has a valid value, and that options
    /// the method requires are present. [`run`](crate::run) does this before reading input.
    pub fn validate(&self, method: Method) -> Result<()> {
        resolve(method, self).map(|_| ())
    }
}

// ------------------------------------------------------------------ resolved settings

/// A range bound: a one-based row number or a date of the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    Row(usize),
    Date(chrono::NaiveDate),
}

/// The `range` option as given (resolved against the series later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RangeSpec {
    pub text: String,
    pub start: Bound,
    pub end: Option<Bound>,
}

/// Options resolved into `ods-stats` controls (with R's defaults where not set).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Config {
    Ears(EarsControl, Option<RangeSpec>),
    Farrington(FarringtonControl, Option<RangeSpec>),
    Flexible(FlexibleControl, Option<RangeSpec>),
    Cusum(CusumControl, Option<RangeSpec>),
    PoissonCi {
        level: f64,
        ci_method: PoissonCiMethod,
        per: f64,
    },
    Level(f64),
    Ebgm {
        n_star: u32,
        stratify: bool,
        prior: Option<GammaMixture>,
    },
}

type Rule = std::result::Result<(), String>;

fn uint(s: &str, min: usize) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v) if v >= min => Ok(v),
        _ => Err(format!("must be a whole number >= {min}")),
    }
}

fn finite(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err("must be a finite number".to_string()),
    }
}

fn check(ok: bool, rule: &str) -> Rule {
    if ok {
        Ok(())
    } else {
        Err(rule.to_string())
    }
}

fn open_unit(s: &str) -> std::result::Result<f64, String> {
    let v = finite(s).map_err(|_| "must be a number strictly between 0 and 1".to_string())?;
    check(
        v > 0.0 && v < 1.0,
        "must be a number strictly between 0 and 1",
    )?;
    Ok(v)
}

fn nonneg(s: &str) -> std::result::Result<f64, String> {
    let v = finite(s).map_err(|_| "must be a finite number >= 0".to_string())?;
    check(v >= 0.0, "must be a finite number >= 0")?;
    Ok(v)
}

fn positive(s: &str) -> std::result::Result<f64, String> {
    let v = finite(s).map_err(|_| "must be a finite number > 0".to_string())?;
    check(v > 0.0, "must be a finite number > 0")?;
    Ok(v)
}

fn boolean(s: &str) -> std::result::Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "1" => Ok(true),
        "false" | "f" | "no" | "0" => Ok(false),
        _ => Err("must be true or false".to_string()),
    }
}

fn limit54(s: &str) -> std::result::Result<(f64, usize), String> {
    let rule =
        "must be `CASES,PERIOD`: two whole numbers, CASES >= 0 and PERIOD >= 1 (R c(5,4) is 5,4)";
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [cases, period] = parts.as_slice() else {
        return Err(rule.to_string());
    };
    match (cases.parse::<u32>(), period.parse::<usize>()) {
        (Ok(c), Ok(p)) if p >= 1 => Ok((f64::from(c), p)),
        _ => Err(rule.to_string()),
    }
}

fn powertrans(s: &str) -> std::result::Result<PowerTransform, String> {
    match s.to_ascii_lowercase().as_str() {
        "2/3" => Ok(PowerTransform::TwoThirds),
        "1/2" => Ok(PowerTransform::Half),
        "none" => Ok(PowerTransform::None),
        _ => Err("must be 2/3, 1/2 or none".to_string()),
    }
}

fn threshold_method(s: &str) -> std::result::Result<ThresholdMethod, String> {
    match s.to_ascii_lowercase().as_str() {
        "delta" => Ok(ThresholdMethod::Delta),
        "nbplugin" => Ok(ThresholdMethod::NbPlugin),
        "muan" => Ok(ThresholdMethod::Muan),
        _ => Err("must be delta, nbPlugin or muan".to_string()),
    }
}

/// The transform without its parameter; `PearsonNegBin`'s alpha is filled in later.
fn trans(s: &str) -> std::result::Result<CusumTransform, String> {
    match s.to_ascii_lowercase().as_str() {
        "standard" => Ok(CusumTransform::Standard),
        "rossi" => Ok(CusumTransform::Rossi),
        "anscombe" => Ok(CusumTransform::Anscombe),
        "anscombe2nd" => Ok(CusumTransform::Anscombe2nd),
        "pearsonnegbin" => Ok(CusumTransform::PearsonNegBin(0.1)),
        "none" => Ok(CusumTransform::None),
        "anscombenegbin" => Err(
            "anscombeNegBin is not implemented in ods-stats; use standard, \
                                 rossi, anscombe, anscombe2nd, pearsonNegBin or none"
                .to_string(),
        ),
        _ => {
            Err("must be standard, rossi, anscombe, anscombe2nd, pearsonNegBin or none".to_string())
        }
    }
}

fn ci_method(s: &str) -> std::result::Result<PoissonCiMethod, String> {
    match s.to_ascii_lowercase().as_str() {
        "exact" => Ok(PoissonCiMethod::Exact),
        "byar" => Ok(PoissonCiMethod::Byar),
        _ => Err("must be exact or byar".to_string()),
    }
}

fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// Parse an ISO date `YYYY-MM-DD` strictly.
pub(crate) fn parse_iso_date(s: &str) -> Option<chrono::NaiveDate> {
    if !is_iso_date(s) {
        return None;
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn bound(s: &str) -> std::result::Result<Bound, String> {
    if s.contains('-') {
        parse_iso_date(s).map(Bound::Date).ok_or_else(|| {
            format!("\"{s}\" is neither a row number >= 1 nor an ISO date YYYY-MM-DD")
        })
    } else {
        match s.parse::<usize>() {
            Ok(v) if v >= 1 => Ok(Bound::Row(v)),
            _ => Err(format!(
                "\"{s}\" is neither a row number >= 1 nor an ISO date YYYY-MM-DD"
            )),
        }
    }
}

fn range(s: &str) -> std::result::Result<RangeSpec, String> {
    let syntax = "must be `START:END` or `START:`, each a one-based row number (1 = first \
                  data row) or an ISO date of the series";
    let Some((a, b)) = s.split_once(':') else {
        return Err(syntax.to_string());
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return Err(syntax.to_string());
    }
    let start = bound(a).map_err(|e| format!("{e}; the range {syntax}"))?;
    let end = if b.is_empty() {
        None
    } else {
        Some(bound(b).map_err(|e| format!("{e}; the range {syntax}"))?)
    };
    if let (Bound::Row(x), Some(Bound::Row(y))) = (start, end) {
        if y < x {
            return Err(format!("end row {y} is before start row {x}"));
        }
    }
    if let (Bound::Date(x), Some(Bound::Date(y))) = (start, end) {
        if y < x {
            return Err(format!("end date {y} is before start date {x}"));
        }
    }
    Ok(RangeSpec {
        text: s.to_string(),
        start,
        end,
    })
}

fn prior(s: &str) -> std::result::Result<GammaMixture, String> {
    let rule = "must be five numbers `alpha1,beta1,alpha2,beta2,p` with shapes and rates > 0 \
                and 0 < p < 1";
    let v: Vec<f64> = s
        .split(',')
        .map(|x| x.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| rule.to_string())?;
    let [a1, b1, a2, b2, p] = v.as_slice() else {
        return Err(rule.to_string());
    };
    GammaMixture::new(*a1, *b1, *a2, *b2, *p).map_err(|_| rule.to_string())
}

/// Typed access to the options of one method.
struct Access<'a> {
    method: Method,
    opts: &'a Options,
}

impl Access<'_> {
    fn get<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> std::result::Result<T, String>,
    ) -> Result<Option<T>> {
        match self.opts.get(name) {
            None => Ok(None),
            Some(v) => parse(v)
                .map(Some)
                .map_err(|rule| AnalyzeError::option(name, v, rule)),
        }
    }

    fn or<T>(
        &self,
        name: &str,
        default: T,
        parse: impl Fn(&str) -> std::result::Result<T, String>,
    ) -> Result<T> {
        Ok(self.get(name, parse)?.unwrap_or(default))
    }

    fn range(&self) -> Result<Option<RangeSpec>> {
        self.get("range", range)
    }

    fn check_applicable(&self) -> Result<()> {
        let specs = self.method.options();
        for (name, value) in self.opts.iter() {
            if !specs.iter().any(|s| s.name == name) {
                let allowed: Vec<&str> = specs.iter().map(|s| s.name).collect();
                return Err(AnalyzeError::OptionNotApplicable {
                    option: name.to_string(),
                    value: value.to_string(),
                    method: self.method,
                    allowed: if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    },
                });
            }
        }
        Ok(())
    }
}

/// Resolve the options of `method` into `ods-stats` controls.
pub(crate) fn resolve(method: Method, opts: &Options) -> Result<Config> {
    let a = Access { method, opts };
    a.check_applicable()?;
    let level = || a.or("level", 0.95, open_unit);
    Ok(match method {
        Method::EarsC1 | Method::EarsC2 | Method::EarsC3 => {
            let ears_method = match method {
                Method::EarsC1 => EarsMethod::C1,
                Method::EarsC2 => EarsMethod::C2,
                _ => EarsMethod::C3,
            };
            let d = EarsControl::with_method(ears_method);
            let c = EarsControl {
                baseline: a.or("baseline", d.baseline, |s| uint(s, 3))?,
                alpha: a.get("alpha", open_unit)?.or(d.alpha),
                min_sigma: a.or("min-sigma", d.min_sigma, nonneg)?,
                ..d
            };
            Config::Ears(c, a.range()?)
        }
        Method::Farrington => {
            let d = FarringtonControl::default();
            let c = FarringtonControl {
                b: a.or("b", d.b, |s| uint(s, 1))?,
                w: a.or("w", d.w, |s| uint(s, 0))?,
                reweight: a.or("reweight", d.reweight, boolean)?,
                alpha: a.or("alpha", d.alpha, open_unit)?,
                trend: a.or("trend", d.trend, boolean)?,
                limit54: a.or("limit54", d.limit54, limit54)?,
                powertrans: a.or("powertrans", d.powertrans, powertrans)?,
                ..d
            };
            Config::Farrington(c, a.range()?)
        }
        Method::FarringtonFlexible => {
            let d = FlexibleControl::default();
            let c = FlexibleControl {
                b: a.or("b", d.b, |s| uint(s, 1))?,
                w: a.or("w", d.w, |s| uint(s, 0))?,
                reweight: a.or("reweight", d.reweight, boolean)?,
                weights_threshold: a.or("weights-threshold", d.weights_threshold, positive)?,
                alpha: a.or("alpha", d.alpha, open_unit)?,
                trend: a.or("trend", d.trend, boolean)?,
                p_threshold_trend: a.or("p-threshold-trend", d.p_threshold_trend, open_unit)?,
                limit54: a.or("limit54", d.limit54, limit54)?,
                powertrans: a.or("powertrans", d.powertrans, powertrans)?,
                no_periods: a.or("no-periods", d.no_periods, |s| uint(s, 1))?,
                past_weeks_not_included: a
                    .get("past-weeks-not-included", |s| uint(s, 0))?
                    .or(d.past_weeks_not_included),
                threshold_method: a.or("threshold-method", d.threshold_method, threshold_method)?,
                ..d
            };
            Config::Flexible(c, a.range()?)
        }
        Method::Cusum => {
            let d = CusumControl::default();
            let mut t = a.or("trans", d.trans, trans)?;
            if let Some(alpha) = a.get("alpha", nonneg)? {
                match t {
                    CusumTransform::PearsonNegBin(_) => t = CusumTransform::PearsonNegBin(alpha),
                    _ => {
                        return Err(AnalyzeError::option(
                            "alpha",
                            opts.get("alpha").unwrap_or_default(),
                            format!(
                                "for cusum, alpha is the overdispersion of trans=pearsonNegBin \
                                 and applies only with that trans (trans is {})",
                                opts.get("trans").unwrap_or("standard")
                            ),
                        ))
                    }
                }
            }
            let m = a.get("m", nonneg)?;
            let r = a.range()?;
            if r.is_none() && m.is_none() {
                return Err(AnalyzeError::MissingOption {
                    method,
                    option: "range".to_string(),
                    reason: "R algo.cusum has no default range; give the monitored rows, e.g. \
                             --range 105: (the in-control mean m is then the mean of rows \
                             1-104), or give --m to monitor all rows"
                        .to_string(),
                });
            }
            let c = CusumControl {
                k: a.or("k", d.k, finite)?,
                h: a.or("h", d.h, finite)?,
                m: m.map_or(CusumMean::BeforeRange, CusumMean::Fixed),
                trans: t,
                ..d
            };
            Config::Cusum(c, r)
        }
        Method::PoissonCi => Config::PoissonCi {
            level: level()?,
            ci_method: a.or("ci-method", PoissonCiMethod::Exact, ci_method)?,
            per: a.or("per", 100_000.0, positive)?,
        },
        Method::Sir | Method::Chapman | Method::Prr | Method::Ror | Method::Ic => {
            Config::Level(level()?)
        }
        Method::Ebgm => Config::Ebgm {
            n_star: a.or("n-star", 1, |s| {
                s.parse::<u32>()
                    .map_err(|_| "must be a whole number >= 0".to_string())
            })?,
            stratify: a.or("stratify", false, boolean)?,
            prior: a.get("prior", prior)?,
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn canonical_names() {
        assert_eq!(canonical("noPeriods"), "no-periods");
        assert_eq!(
            canonical("--past-weeks-not-included"),
            "past-weeks-not-included"
        );
        assert_eq!(canonical("pastWeeksNotIncluded"), "past-weeks-not-included");
        assert_eq!(canonical("pThresholdTrend"), "p-threshold-trend");
        assert_eq!(canonical("N_star"), "n-star");
        assert_eq!(canonical("limit54"), "limit54");
        assert_eq!(canonical("conf.level"), "level");
        assert_eq!(canonical("minSigma"), "min-sigma");
        assert_eq!(canonical("weights_threshold"), "weights-threshold");
    }

    #[test]
    fn range_syntax() {
        let r = range("105:").unwrap();
        assert_eq!((r.start, r.end), (Bound::Row(105), None));
        let r = range("2020-01-06:2020-03-02").unwrap();
        assert!(matches!(r.start, Bound::Date(_)));
        assert!(range("0:5").is_err());
        assert!(range("5").is_err());
        assert!(range(":5").is_err());
        assert!(range("9:5").is_err());
        assert!(range("2020-13-01:").is_err());
    }
}
