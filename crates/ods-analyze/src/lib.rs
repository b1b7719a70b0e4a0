//! `ods-analyze`: run any statistical method of [`ods_stats`] on an analyst's own CSV data and
//! write the results as CSV or JSON, so they can be checked against other tools (R
//! `surveillance`, openEBGM). This is the engine behind
//! `ods analyze <method> --input FILE.csv [--format csv|json] [--OPTION VALUE ...]`; it does no
//! file or network I/O of its own: it reads any [`std::io::Read`] and writes any
//! [`std::io::Write`].
//!
//! ```
//! use ods_analyze::{run, Format, Method, Options};
//!
//! let input = "date,count\n2024-01-01,3\n2024-01-08,2\n2024-01-15,4\n\
//!              2024-01-22,3\n2024-01-29,2\n2024-02-05,12\n";
//! let mut options = Options::new();
//! options.set("baseline", "3")?;
//! let mut out = Vec::new();
//! run(Method::EarsC1, &options, input.as_bytes(), Format::Csv, &mut out)?;
//! let text = String::from_utf8(out).unwrap();
//! assert!(text.starts_with("date,count,upperbound,alarm,expected,sigma\n"));
//! assert!(text.ends_with("2024-02-05,12,6.090232306167813,true,3,1\n"));
//! # Ok::<(), ods_analyze::AnalyzeError>(())
//! ```
//!
//! See the crate README for the methods, input formats, options (with their R names and
//! defaults) and output columns; in short:
//!
//! * **Methods** ([`Method`]): `ears-c1`, `ears-c2`, `ears-c3`, `farrington`,
//!   `farrington-flexible`, `cusum` read a count series `date,count`; `poisson-ci` reads
//!   `observed[,population]`, `sir` `observed,expected`, `chapman` `n1,n2,m`; `prr`, `ror`, `ic`
//!   read 2x2 tables `a,b,c,d` or report-level rows `report_id,exposure,diagnosis[,stratum]`;
//!   `ebgm` reads report-level rows or `N,E` cells.
//! * **Options** ([`Options`]): `(name, value)` string pairs named after R's `control` list in
//!   kebab case, with R's defaults ([`Method::options`] lists them).
//! * **Output** ([`Output`], [`Format`]): the input columns followed by the method's result
//!   columns. Where a method gives no value for a row (before the first evaluable week of a
//!   series, a zero cell for ROR, ...) the cell is empty in CSV and `null` in JSON; that is not
//!   an error.
//! * **Errors** ([`AnalyzeError`]): name the line, column, value and rule, or the option, value
//!   and rule. Nothing panics on any input.
//!
//! # Wiring a command line
//!
//! Parse the method with [`Method::from_str`](std::str::FromStr) (possible values:
//! [`Method::NAMES`]) and the format with [`Format::from_str`](std::str::FromStr). For the
//! options, either declare one `--NAME VALUE` flag per name in [`all_option_names`] (help text
//! from [`Method::options`]: [`OptionSpec::help`], [`OptionSpec::default`],
//! [`OptionSpec::r_name`]) and call [`Options::set`] for each flag given, or collect trailing
//! `--NAME VALUE` pairs and pass them to [`Options::from_pairs`]. [`run`] rejects options the
//! method does not have, so the command line need not know which option belongs to which method.

mod error;
mod input;
mod method;
mod options;
mod output;
mod series;
mod table;

use std::io::{Read, Write};

pub use error::{AnalyzeError, Result};
pub use method::{Format, Method};
pub use options::{all_option_names, OptionSpec, Options};
pub use output::{Output, Value};

use options::resolve;

/// Run `method` with `options` on the CSV `input` and return the result table.
///
/// Options are validated before the input is read. See [`run`] to write the table directly.
pub fn analyze(method: Method, options: &Options, input: impl Read) -> Result<Output> {
    let config = resolve(method, options)?;
    let csv = input::read_csv(input, method, method.input_help())?;
    match method {
        Method::EarsC1
        | Method::EarsC2
        | Method::EarsC3
        | Method::Farrington
        | Method::FarringtonFlexible
        | Method::Cusum => series::run(method, &config, &csv),
        Method::Prr | Method::Ror | Method::Ic => table::disproportionality(method, &config, &csv),
        Method::PoissonCi => table::poisson(&config, &csv),
        Method::Sir => table::standardised_ratio(&config, &csv),
        Method::Chapman => table::capture_recapture(&config, &csv),
        Method::Ebgm => table::ebgm(&config, &csv),
    }
}

/// Run `method` with `options` on the CSV `input` and write the result to `output` in
/// `format`. The single entry point of the `ods analyze` command.
///
/// Nothing is written when the input or options are invalid (the whole input is read and
/// analysed before the first byte is written).
pub fn run(
    method: Method,
    options: &Options,
    input: impl Read,
    format: Format,
    output: impl Write,
) -> Result<()> {
    analyze(method, options, input)?.write(format, output)
}
