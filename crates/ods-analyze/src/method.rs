//! The methods and output formats.

use std::fmt;
use std::str::FromStr;

use crate::error::AnalyzeError;

/// A statistical method of `ods-stats`, named in kebab case as on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// `ears-c1`: EARS C1 (R `surveillance::earsC`, `method = "C1"`).
    EarsC1,
    /// `ears-c2`: EARS C2 (R `earsC`, `method = "C2"`).
    EarsC2,
    /// `ears-c3`: EARS C3 (R `earsC`, `method = "C3"`).
    EarsC3,
    /// `farrington`: original Farrington (R `algo.farrington`).
    Farrington,
    /// `farrington-flexible`: improved Farrington, Noufaily et al. 2013 (R `farringtonFlexible`).
    FarringtonFlexible,
    /// `cusum`: CUSUM for counts (R `algo.cusum`).
    Cusum,
    /// `poisson-ci`: exact (R `poisson.test`) or Byar interval of a count, and a rate.
    PoissonCi,
    /// `sir`: standardised incidence ratio O/E with exact interval (R `poisson.test(O, T = E)`).
    Sir,
    /// `chapman`: two-source capture-recapture (Chapman estimator, Seber variance).
    Chapman,
    /// `prr`: proportional reporting ratio, chi-square and Evans signal.
    Prr,
    /// `ror`: reporting odds ratio with Woolf interval.
    Ror,
    /// `ic`: BCPNN information component (Noren et al. 2013).
    Ic,
    /// `ebgm`: MGPS empirical Bayes geometric mean (DuMouchel 1999; openEBGM).
    Ebgm,
}

/// The input a method reads, for help text; see [`Method::input_help`].
const SERIES_INPUT: &str = "a count series `date,count` (ISO dates YYYY-MM-DD, one row per day, \
                            week or month, ascending, no gaps)";
const TABLE_INPUT: &str = "2x2 tables `a,b,c,d` (extra columns such as `label` are kept) or \
                           report-level rows `report_id,exposure,diagnosis[,stratum]` (openEBGM \
                           names `id,var1,var2[,strat]` also accepted)";

impl Method {
    /// All methods, in help-text order.
    pub const ALL: [Method; 13] = [
        Method::EarsC1,
        Method::EarsC2,
        Method::EarsC3,
        Method::Farrington,
        Method::FarringtonFlexible,
        Method::Cusum,
        Method::PoissonCi,
        Method::Sir,
        Method::Chapman,
        Method::Prr,
        Method::Ror,
        Method::Ic,
        Method::Ebgm,
    ];

    /// The kebab-case names of [`Method::ALL`], in the same order (for help text and
    /// `clap`'s possible values).
    pub const NAMES: [&'static str; 13] = [
        "ears-c1",
        "ears-c2",
        "ears-c3",
        "farrington",
        "farrington-flexible",
        "cusum",
        "poisson-ci",
        "sir",
        "chapman",
        "prr",
        "ror",
        "ic",
        "ebgm",
    ];

    /// The kebab-case name, e.g. `"farrington-flexible"`.
    pub fn name(self) -> &'static str {
        match self {
            Method::EarsC1 => "ears-c1",
            Method::EarsC2 => "ears-c2",
            Method::EarsC3 => "ears-c3",
            Method::Farrington => "farrington",
            Method::FarringtonFlexible => "farrington-flexible",
            Method::Cusum => "cusum",
            Method::PoissonCi => "poisson-ci",
            Method::Sir => "sir",
            Method::Chapman => "chapman",
            Method::Prr => "prr",
            Method::Ror => "ror",
            Method::Ic => "ic",
            Method::Ebgm => "ebgm",
        }
    }

    /// One line describing the method and its reference implementation.
    pub fn description(self) -> &'static str {
        match self {
            Method::EarsC1 => "EARS C1 aberration detection (R surveillance::earsC, method C1)",
            Method::EarsC2 => "EARS C2 aberration detection (R surveillance::earsC, method C2)",
            Method::EarsC3 => "EARS C3 aberration detection (R surveillance::earsC, method C3)",
            Method::Farrington => "original Farrington algorithm (R surveillance::algo.farrington)",
            Method::FarringtonFlexible => {
                "improved Farrington, Noufaily et al. 2013 (R surveillance::farringtonFlexible)"
            }
            Method::Cusum => "CUSUM for Poisson counts (R surveillance::algo.cusum)",
            Method::PoissonCi => {
                "exact (R poisson.test) or Byar Poisson interval of a count, and a rate per `per`"
            }
            Method::Sir => {
                "standardised incidence ratio O/E with exact interval (R poisson.test(O, T = E))"
            }
            Method::Chapman => {
                "two-source capture-recapture: Chapman estimate, Seber variance, Wald and Chao intervals"
            }
            Method::Prr => {
                "proportional reporting ratio with interval, chi-square (R chisq.test) and Evans signal"
            }
            Method::Ror => "reporting odds ratio with Woolf interval",
            Method::Ic => "BCPNN information component with credibility interval (Noren et al. 2013)",
            Method::Ebgm => {
                "MGPS empirical Bayes geometric mean EBGM, EB05, EB95 (DuMouchel 1999; openEBGM)"
            }
        }
    }

    /// The input the method reads, for help text.
    pub fn input_help(self) -> &'static str {
        match self {
            Method::EarsC1
            | Method::EarsC2
            | Method::EarsC3
            | Method::Farrington
            | Method::FarringtonFlexible
            | Method::Cusum => SERIES_INPUT,
            Method::PoissonCi => "counts `observed` (or `count`), optionally with `population`",
            Method::Sir => "`observed,expected`",
            Method::Chapman => "`n1,n2,m` (cases in source 1, in source 2, in both)",
            Method::Prr | Method::Ror | Method::Ic => TABLE_INPUT,
            Method::Ebgm => {
                "report-level rows `report_id,exposure,diagnosis[,stratum]` (openEBGM raw data; \
                 names `id,var1,var2[,strat]` also accepted) or pre-built cells `N,E`"
            }
        }
    }

    /// Whether the method reads a count series.
    pub fn is_series(self) -> bool {
        matches!(
            self,
            Method::EarsC1
                | Method::EarsC2
                | Method::EarsC3
                | Method::Farrington
                | Method::FarringtonFlexible
                | Method::Cusum
        )
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = AnalyzeError;

    /// Parses a kebab-case name (ASCII case-insensitive; `_` accepted for `-`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        Method::ALL
            .iter()
            .copied()
            .find(|m| m.name() == norm)
            .ok_or_else(|| AnalyzeError::UnknownMethod {
                name: s.to_string(),
            })
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// CSV with a header line; empty cells where a method gives no value.
    #[default]
    Csv,
    /// A JSON array of objects (keys in column order); `null` where a method gives no value.
    Json,
}

impl Format {
    /// `"csv"` or `"json"`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = AnalyzeError;

    /// Parses `csv` or `json` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            _ => Err(AnalyzeError::UnknownFormat {
                name: s.to_string(),
            }),
        }
    }
}
