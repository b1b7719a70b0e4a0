//! Disclosure control: the one pure step between exact counts and published answers.
//!
//! Every store (embedded SQLite, ClickHouse) answers only *exact* counts (and, for sector funds,
//! exact counts per reporter). Sector scope, primary suppression and complementary suppression
//! are applied here, so both stores publish identical answers by construction.
//!
//! ## Primary suppression
//! * Analysts and admins ([`Policy::ANALYST`]): a cell with 1 to 4 notifications is withheld.
//! * Sector funds ([`Policy::SECTOR_FUND`]): a cell needs at least 10 notifications **and** at
//!   least 3 distinct reporting doctors (`shared/domain.md` §6); the reporter numbers are used
//!   here only and never appear in an answer.
//!
//! A suppressed cell is listed as `count: null, suppressed: true`. Zero is shown (it discloses
//! no one), except that complementary suppression may also withhold an empty cell: **a
//! suppressed cell may be empty**.
//!
//! ## The tables behind an answer
//! Dimensions belong to *attributes* whose levels nest: period (year > quarter > month), sector
//! (SBI section > sector code), diagnosis (group > code), exposure (group > primary exposure),
//! and sex, age band, detection route, consequence. The *grid* of a query gives each attribute
//! the finest level that its `group_by`, its filters or its period range need; a range counts as
//! a filter on the coarsest period level it is aligned to (`from=2020-01&to=2022-12`: years,
//! `from=2020-04`: quarters, `from=2020-02`: months). The *table* of a grid holds the exact
//! counts of every cell of that grid over the whole universe: all periods, no filters; for a
//! sector fund, the fund's own sectors. Its cells are the *atoms* of the answer: the answer
//! selects the atoms its filters and range keep and sums them by `group_by`; **an answer cell is
//! published only if every atom in it is published**, and then it is their exact sum.
//!
//! A grid `h` is a *coarsening* of a grid `g` when every attribute is at the same or a coarser
//! level in `h` or left out; each `h` cell is then a union of `g` cells. The tables of all
//! coarsenings of the query's grid (its *lattice*) are suppressed coarsest first, each by the
//! same procedure (`disclosure/lattice.rs`):
//!
//! 1. **primary** suppression (above); these cells are the *secret* ones;
//! 2. **group rules** against every coarsening `h` (not only the one-dimension margins: every
//!    dimension dropped or raised, and any combination): for each cell `c` of `h`, the cells of
//!    this table inside `c` must satisfy: if `c` is published, either none of them is
//!    suppressed, or at least two are, whose total `S` is at least the threshold, differs from
//!    their number `k`, and (sector funds) comes from at least 3 distinct reporters; if `c` is
//!    suppressed, at least one of them is suppressed. A violated rule is repaired by
//!    suppressing the smallest published cell inside `c` (ties by key) that is not *locked*
//!    (the only cell inside some other published coarser cell: its value is public, so hiding
//!    it protects nothing), or else an empty cell inside `c` whose projection onto every
//!    coarser table is a listed cell there (so no coarser table shows it to be empty); repeat
//!    until stable;
//! 3. an **audit** plays the attacker: interval propagation over every published coarser cell
//!    of the lattice at once (its suppressed cells sum to its count minus the published ones),
//!    once with suppressed cells `>= 0` (sound, since suppressed cells may be empty) and once
//!    with them `>= 1` (what one would assume without that note; when the table's published
//!    numbers contradict it anywhere, it is known to be wrong and proves nothing; otherwise
//!    only intervals that close on the true value count). A secret cell whose interval
//!    closes on its value gets another suppression inside the tightest published coarser cell
//!    around it (step 2's choice, or an empty cell), then the rules are settled again, until
//!    the audit finds nothing;
//! 4. a table where a secret cell stays pinned (a published coarser cell made only of unique
//!    singletons, with no cell left to hide them among) or that exhausts its work budget is
//!    **withheld**: its answers list no cell (`withheld: true`; a total from it is suppressed
//!    whatever its value) and it constrains no finer table.
//!
//! A table's pattern depends on the data and its grid only, never on the query that needed it
//! (the work budget is per table), so a cell is published or suppressed alike in every answer
//! (the tests check this).
//!
//! ## Why no suppressed cell can be recovered
//! Everything published is a published cell of some listed table: answer cells are sums of
//! published atoms, and a cell with a suppressed atom is itself suppressed.
//!
//! * **Totals and margins of an answer, finer against coarser queries** (a, b): dropping a
//!   `group_by` dimension or coarsening it (month to year) keeps filters and range and so gives
//!   the cells of a coarsening `h` of the finer grid `g`. For a published `h` cell `c`,
//!   `c - (published g cells inside c)` is the total `S` of the suppressed `g` cells inside `c`:
//!   by the group rules none, or a sum of `k >= 2` unknowns, each anywhere from 0 to `S`
//!   (suppressed cells may be empty), `S` at least the threshold and `S != k`, so even someone
//!   assuming every suppressed cell is non-empty cannot conclude that all are 1. Where the
//!   rules cannot be met (only locked cells left), the audit has checked that combining all
//!   margins of the table still pins no secret cell. A suppressed `h` cell always contains a
//!   suppressed `g` cell, so it is never the sum of published cells either.
//! * **Overlapping filters and period ranges** (c): two answers that differ only in filter
//!   values or range boundaries read the same table; each published number is a sum of
//!   published atoms, so their difference is a sum of published atoms, which is public anyway.
//!   Ranges that differ in alignment (a year against the same year minus December) read a
//!   table and its coarsening, which is case (b).
//!
//! The tests (`disclosure/tests.rs`) build random universes and try exactly these attacks:
//! a total or margin minus the published cells, every coarser answer against the finer one with
//! interval propagation over all of them at once (cells `>= 0` and `>= 1`), and a wider filter
//! minus a narrower one; no secret cell is ever determined. They also check that a coarser
//! answer read from a finer query's lattice equals the coarser query's own answer.
//!
//! **Limits.** A *secondary* suppression may occasionally be derivable when it holds exactly the
//! notifications of a published cell elsewhere (its value is public anyway, and passes the
//! rules). Tables that are not coarsenings of one another (say, year totals and sex totals
//! when one sex occurs in one year only), combined by linear programming, can narrow the
//! interval of a secret cell further than any one lattice shows; full protection against that
//! needs one fixed table for all queries (or perturbation, which the exact counts of this API
//! rule out). An attacker who re-runs this deterministic procedure on guessed data may learn
//! more than the intervals. Answers are limited to [`MAX_TABLES`] tables (a query may group and
//! filter by about four attributes), which bounds the work per query.

mod lattice;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use self::lattice::{
    attr_level, coarsens, dim_index, grid_dims, lattice_size, Grid, Key, Lattice, Rules, NATTR,
    NDIM, NONE, PERIOD,
};
use crate::queries::{CellKey, CountCell, CountQuery, Dimension};
use crate::{SECTOR_FUND_MIN_REPORTERS, SECTOR_FUND_THRESHOLD, SUPPRESSION_THRESHOLD};

/// The most tables one answer may need (the product over attributes of their level + 1);
/// queries above it are refused by the API.
pub const MAX_TABLES: usize = 36;

/// The publication rules of one audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Policy {
    /// A published cell has at least this many notifications.
    pub min_count: i64,
    /// A published cell comes from at least this many distinct reporting doctors (0: no rule).
    pub min_reporters: usize,
}

impl Policy {
    /// Analysts and admins: cells below 5 are suppressed.
    pub const ANALYST: Policy = Policy {
        min_count: SUPPRESSION_THRESHOLD,
        min_reporters: 0,
    };
    /// Sector funds: at least 10 notifications from at least 3 distinct reporters.
    pub const SECTOR_FUND: Policy = Policy {
        min_count: SECTOR_FUND_THRESHOLD,
        min_reporters: SECTOR_FUND_MIN_REPORTERS,
    };

    /// The rules for a query: a query with a sector scope is a sector fund's.
    pub fn of(query: &CountQuery) -> Policy {
        if query.sector_scope.is_some() {
            Policy::SECTOR_FUND
        } else {
            Policy::ANALYST
        }
    }
}

/// One exact cell of a store's answer to a [`table_query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactCell {
    /// The cell's value per dimension.
    pub key: CellKey,
    /// Notifications.
    pub count: i64,
    /// Distinct reporter pseudonyms (empty unless the policy needs them).
    pub reporters: Vec<String>,
}

impl ExactCell {
    /// Cells from exact counts (no reporters).
    pub fn from_counts(cells: Vec<(CellKey, i64)>) -> Vec<ExactCell> {
        cells
            .into_iter()
            .map(|(key, count)| ExactCell {
                key,
                count,
                reporters: Vec::new(),
            })
            .collect()
    }

    /// Cells from exact counts per (cell, reporter).
    pub fn from_reporter_counts(rows: Vec<(CellKey, String, i64)>) -> Vec<ExactCell> {
        let mut cells: BTreeMap<CellKey, (i64, BTreeSet<String>)> = BTreeMap::new();
        for (key, reporter, n) in rows {
            let cell = cells.entry(key).or_default();
            cell.0 += n;
            if n > 0 {
                cell.1.insert(reporter);
            }
        }
        cells
            .into_iter()
            .map(|(key, (count, reporters))| ExactCell {
                key,
                count,
                reporters: reporters.into_iter().collect(),
            })
            .collect()
    }
}

/// Why an answer cannot be read from a [`Disclosed`].
#[derive(Debug, thiserror::Error)]
pub enum DisclosureError {
    /// The query needs a finer table than the one the answer was built for.
    #[error("the query needs dimensions or levels beyond the tables built ({0})")]
    NotCovered(String),
    /// The query's sector scope differs from the one the tables were built for.
    #[error("the query's sector scope differs from the tables' scope")]
    ScopeMismatch,
}

/// The query a store must answer exactly for the published answer to `query`: every dimension
/// of the query's grid with its coarser levels (so every coarsening can be folded), grouped by
/// sector and SBI section as well when a scope is set; no filters and no period range (those
/// select atoms of the table); the scope is kept (per-reporter answers may use it to keep only
/// the fund's sectors).
pub fn table_query(query: &CountQuery) -> CountQuery {
    let mut group_by = grid_dims(&query_grid(query));
    if query.sector_scope.is_some() {
        for d in [Dimension::Sector, Dimension::SbiSection] {
            if !group_by.contains(&d) {
                group_by.push(d);
            }
        }
    }
    CountQuery {
        group_by,
        filters: Vec::new(),
        from: None,
        to: None,
        sector_scope: query.sector_scope.clone(),
    }
}

/// How many tables the answer to `query` needs (see [`MAX_TABLES`]).
pub fn table_count(query: &CountQuery) -> usize {
    lattice_size(&query_grid(query))
}

/// The level of the period attribute that a range `from..=to` is aligned to (0: no range).
fn period_alignment(from: Option<&str>, to: Option<&str>) -> u8 {
    if from.is_none() && to.is_none() {
        return 0;
    }
    let month = |p: Option<&str>| -> Option<Option<u32>> {
        match p {
            None => Some(None),
            Some(p) => p
                .get(5..7)
                .and_then(|m| m.parse::<u32>().ok())
                .filter(|_| p.len() == 7)
                .map(Some),
        }
    };
    let (Some(f), Some(t)) = (month(from), month(to)) else {
        return 3;
    };
    if matches!(f, None | Some(1)) && matches!(t, None | Some(12)) {
        1
    } else if matches!(f, None | Some(1 | 4 | 7 | 10)) && matches!(t, None | Some(3 | 6 | 9 | 12)) {
        2
    } else {
        3
    }
}

fn query_grid(query: &CountQuery) -> Grid {
    let mut grid = [0u8; NATTR];
    let mut raise = |d: Dimension| {
        let (a, l) = attr_level(d);
        grid[a] = grid[a].max(l);
    };
    for d in &query.group_by {
        raise(*d);
    }
    for (d, values) in &query.filters {
        if !values.is_empty() {
            raise(*d);
        }
    }
    let aligned = period_alignment(query.from.as_deref(), query.to.as_deref());
    grid[PERIOD] = grid[PERIOD].max(aligned);
    grid
}

/// Whether an exact cell (grouped by sector and section) lies in a sector scope.
fn in_scope(scope: &[String], key: &CellKey) -> bool {
    [Dimension::SbiSection, Dimension::Sector].iter().any(|d| {
        key.get(d.name())
            .is_some_and(|v| scope.iter().any(|s| s == v))
    })
}

/// A period `YYYY-MM` at a level of the period attribute (`YYYY`, `YYYY-Qn`, `YYYY-MM`).
fn period_at(month: &str, level: u8) -> String {
    match level {
        1 => month.get(..4).unwrap_or(month).to_string(),
        2 => match (
            month.get(..4),
            month.get(5..7).and_then(|m| m.parse::<u32>().ok()),
        ) {
            (Some(y), Some(m)) if (1..=12).contains(&m) => format!("{y}-Q{}", (m - 1) / 3 + 1),
            _ => month.to_string(),
        },
        _ => month.to_string(),
    }
}

/// Every table an answer needs, suppressed: build once per query with [`Disclosed::new`], then
/// read the answer (or the answers of coarser queries with the same scope) with
/// [`Disclosed::answer`].
#[derive(Debug, Clone)]
pub struct Disclosed {
    scope: Option<Vec<String>>,
    policy: Policy,
    top: Grid,
    /// Value names per dimension, indexed by the interned id.
    names: Vec<Vec<String>>,
    lattice: Lattice,
}

impl Disclosed {
    /// Suppresses every table of `query`'s lattice, from the store's exact cells of
    /// [`table_query`]`(query)`.
    pub fn new(query: &CountQuery, rows: Vec<ExactCell>) -> Disclosed {
        let policy = Policy::of(query);
        let top = query_grid(query);
        let dims = grid_dims(&top);
        let rows: Vec<ExactCell> = rows
            .into_iter()
            .filter(|r| r.count > 0)
            .filter(|r| match &query.sector_scope {
                Some(scope) => in_scope(scope, &r.key),
                None => true,
            })
            .collect();
        // intern the values of each dimension in sorted order, so keys sort like their values
        let mut names: Vec<Vec<String>> = vec![Vec::new(); NDIM];
        let mut ids: Vec<HashMap<String, u32>> = vec![HashMap::new(); NDIM];
        for d in &dims {
            let set: BTreeSet<&str> = rows
                .iter()
                .map(|r| r.key.get(d.name()).map(String::as_str).unwrap_or(""))
                .collect();
            let i = dim_index(*d);
            names[i] = set.into_iter().map(str::to_string).collect();
            ids[i] = names[i]
                .iter()
                .enumerate()
                .map(|(n, v)| (v.clone(), n as u32))
                .collect();
        }
        let mut reporter_ids: HashMap<String, u32> = HashMap::new();
        let mut base: HashMap<Key, (i64, Vec<u32>)> = HashMap::new();
        for r in rows {
            let mut key: Key = [NONE; NDIM];
            for d in &dims {
                let i = dim_index(*d);
                let v = r.key.get(d.name()).map(String::as_str).unwrap_or("");
                key[i] = ids[i].get(v).copied().unwrap_or(NONE);
            }
            let cell = base.entry(key).or_default();
            cell.0 += r.count;
            if policy.min_reporters > 0 {
                for rep in r.reporters {
                    let next = reporter_ids.len() as u32;
                    cell.1.push(*reporter_ids.entry(rep).or_insert(next));
                }
            }
        }
        let mut base: Vec<(Key, i64, Vec<u32>)> =
            base.into_iter().map(|(k, (n, r))| (k, n, r)).collect();
        base.sort_by_key(|(k, _, _)| *k);
        let lattice = Lattice::build(
            top,
            &base,
            Rules {
                min_count: policy.min_count,
                min_reporters: policy.min_reporters,
            },
        );
        if lattice.withheld > 0 {
            tracing::info!(
                tables = lattice.withheld,
                "tables withheld: complementary suppression could not protect them"
            );
        }
        Disclosed {
            scope: query.sector_scope.clone(),
            policy,
            top,
            names,
            lattice,
        }
    }

    /// The rules applied.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// How many tables of the lattice are withheld (complementary suppression could not
    /// protect them).
    pub fn withheld_tables(&self) -> usize {
        self.lattice.withheld
    }

    /// The first and last month with data in the universe (at the table's period level:
    /// `2014` spans `2014-01` to `2014-12`), if the query's grid has a period.
    pub fn period_span(&self) -> Option<(String, String)> {
        let level = self.top[PERIOD];
        if level == 0 {
            return None;
        }
        let dim = lattice::ATTRS[PERIOD][level as usize - 1];
        let names = &self.names[dim_index(dim)];
        let (first, last) = (names.first()?, names.last()?);
        let first_month = |p: &str| match level {
            1 => format!("{p}-01"),
            2 => match p.get(6..).and_then(|q| q.parse::<u32>().ok()) {
                Some(q) => format!("{}-{:02}", p.get(..4).unwrap_or(p), q * 3 - 2),
                None => p.to_string(),
            },
            _ => p.to_string(),
        };
        let last_month = |p: &str| match level {
            1 => format!("{p}-12"),
            2 => match p.get(6..).and_then(|q| q.parse::<u32>().ok()) {
                Some(q) => format!("{}-{:02}", p.get(..4).unwrap_or(p), q * 3),
                None => p.to_string(),
            },
            _ => p.to_string(),
        };
        Some((first_month(first), last_month(last)))
    }

    fn name(&self, d: Dimension, key: &Key) -> &str {
        let id = key[dim_index(d)];
        self.names[dim_index(d)]
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The published answer to `query` (the query of [`Disclosed::new`] or a coarser one with
    /// the same scope): cells ordered by their `group_by` values; cells with nothing to show
    /// (0, not suppressed) are left out, but without `group_by` there is always one cell, the
    /// total (possibly 0). From a withheld table: no cells (without `group_by`, one suppressed
    /// cell, whatever the total).
    pub fn answer(&self, query: &CountQuery) -> Result<Published, DisclosureError> {
        if query.sector_scope != self.scope {
            return Err(DisclosureError::ScopeMismatch);
        }
        let grid = query_grid(query);
        let table = match self.lattice.by_grid.get(&grid) {
            Some(t) if coarsens(&grid, &self.top) => &self.lattice.tables[*t],
            _ => {
                let dims: Vec<&str> = grid_dims(&grid).iter().map(|d| d.name()).collect();
                return Err(DisclosureError::NotCovered(dims.join(", ")));
            }
        };
        if table.withheld {
            let cells = if query.group_by.is_empty() {
                vec![CountCell {
                    dimensions: CellKey::new(),
                    count: None,
                    suppressed: true,
                }]
            } else {
                Vec::new()
            };
            return Ok(Published {
                cells,
                withheld: true,
            });
        }
        let filters: Vec<(Dimension, BTreeSet<&str>)> = query
            .filters
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(d, v)| (*d, v.iter().map(String::as_str).collect()))
            .collect();
        let level = grid[PERIOD];
        let period_dim = (level > 0).then(|| lattice::ATTRS[PERIOD][level as usize - 1]);
        let from = query.from.as_deref().map(|p| period_at(p, level));
        let to = query.to.as_deref().map(|p| period_at(p, level));
        let mut folded: BTreeMap<Vec<&str>, (i64, bool)> = BTreeMap::new();
        for (i, key) in table.keys.iter().enumerate() {
            if !filters
                .iter()
                .all(|(d, values)| values.contains(self.name(*d, key)))
            {
                continue;
            }
            if let Some(pd) = period_dim {
                let p = self.name(pd, key);
                if from.as_deref().is_some_and(|f| p < f) || to.as_deref().is_some_and(|t| p > t) {
                    continue;
                }
            }
            let values: Vec<&str> = query.group_by.iter().map(|d| self.name(*d, key)).collect();
            let cell = folded.entry(values).or_insert((0, false));
            cell.0 += table.count[i];
            cell.1 |= table.suppressed[i];
        }
        if query.group_by.is_empty() && folded.is_empty() {
            folded.insert(Vec::new(), (0, false));
        }
        let cells = folded
            .into_iter()
            .filter(|(values, (n, suppressed))| values.is_empty() || *n != 0 || *suppressed)
            .map(|(values, (n, suppressed))| CountCell {
                dimensions: query
                    .group_by
                    .iter()
                    .map(|d| d.name())
                    .zip(values.into_iter().map(str::to_string))
                    .collect(),
                count: (!suppressed).then_some(n),
                suppressed,
            })
            .collect();
        Ok(Published {
            cells,
            withheld: false,
        })
    }
}

/// A published answer: its cells, or none when its table is withheld.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Published {
    /// The cells, ordered by their `group_by` values.
    pub cells: Vec<CountCell>,
    /// The answer's table is too detailed to protect (complementary suppression could not
    /// hide every withheld cell), so no cell of it is listed; group by fewer dimensions or
    /// coarser levels.
    pub withheld: bool,
}

/// The published answer to `query` from the exact cells of [`table_query`]`(query)`.
pub fn publish(query: &CountQuery, rows: Vec<ExactCell>) -> Published {
    Disclosed::new(query, rows)
        .answer(query)
        .unwrap_or_default()
}

/// The query a store must answer exactly for [`apply_scope`]: the same dimensions, filters and
/// period, without the sector scope; when a scope is set, grouped by sector and SBI section as
/// well so [`apply_scope`] can select the cells of the scope. (For unpublished, internal counts;
/// published answers use [`table_query`].)
pub fn store_query(query: &CountQuery) -> CountQuery {
    let mut inner = query.clone();
    inner.sector_scope = None;
    if query.sector_scope.is_some() {
        for d in [Dimension::Sector, Dimension::SbiSection] {
            if !inner.group_by.contains(&d) {
                inner.group_by.push(d);
            }
        }
    }
    inner
}

/// Keeps the exact cells (of [`store_query`]) inside the query's sector scope (cells whose SBI
/// section or sector code is in the scope; an empty scope keeps nothing), folds them back to the
/// query's own dimensions, drops empty cells, and orders them by the grouped values in
/// `group_by` order. Without dimensions the answer is always one cell: the total (possibly 0).
pub fn apply_scope(query: &CountQuery, cells: Vec<(CellKey, i64)>) -> Vec<(CellKey, i64)> {
    let mut folded: BTreeMap<Vec<String>, i64> = BTreeMap::new();
    for (key, n) in cells {
        if let Some(scope) = &query.sector_scope {
            if !in_scope(scope, &key) {
                continue;
            }
        }
        let values: Vec<String> = query
            .group_by
            .iter()
            .map(|d| key.get(d.name()).cloned().unwrap_or_default())
            .collect();
        *folded.entry(values).or_insert(0) += n;
    }
    if query.group_by.is_empty() {
        let total = folded.values().sum();
        return vec![(CellKey::new(), total)];
    }
    folded
        .into_iter()
        .filter(|(_, n)| *n != 0)
        .map(|(values, n)| {
            let key = query
                .group_by
                .iter()
                .map(|d| d.name())
                .zip(values)
                .collect::<CellKey>();
            (key, n)
        })
        .collect()
}

#[cfg(test)]
mod tests;
