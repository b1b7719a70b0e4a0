//! The tables behind an answer and their suppression patterns (see the module docs of
//! [`crate::disclosure`] for the design and why it protects).
//!
//! Dimensions are grouped into *attributes* whose levels nest (year > quarter > month, SBI
//! section > sector code, diagnosis group > diagnosis, exposure group > primary exposure; the
//! others have one level). A [`Grid`] gives each attribute a level (or leaves it out); a
//! [`Table`] holds the exact cells of a grid over the whole universe. Every grid at or below the
//! query's grid (each attribute at the same or a coarser level, or left out) is a *coarsening*;
//! tables are processed coarsest first, so each table's pattern depends on the data and its grid
//! only.

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::queries::Dimension;

/// Number of dimensions ([`Dimension::ALL`]).
pub(super) const NDIM: usize = 13;
/// Number of attributes.
pub(super) const NATTR: usize = 8;
/// "This dimension is not part of the key."
pub(super) const NONE: u32 = u32::MAX;
/// Interned values per dimension, in [`Dimension::ALL`] order.
pub(super) type Key = [u32; NDIM];
/// The level of each attribute (0: left out; 1: coarsest).
pub(super) type Grid = [u8; NATTR];

/// The attributes, each with its levels from coarse to fine.
pub(super) const ATTRS: [&[Dimension]; NATTR] = [
    &[Dimension::Year, Dimension::Quarter, Dimension::Month],
    &[Dimension::SbiSection, Dimension::Sector],
    &[Dimension::DiagnosisGroup, Dimension::Diagnosis],
    &[Dimension::ExposureGroup, Dimension::Exposure],
    &[Dimension::Sex],
    &[Dimension::AgeBand],
    &[Dimension::DetectionRoute],
    &[Dimension::Consequence],
];

/// The period attribute.
pub(super) const PERIOD: usize = 0;

/// At most this many keys are tried when looking for an empty cell to suppress.
const ZERO_SEARCH_LIMIT: usize = 512;

/// Work units (key projections looked up, equation members visited) one table may spend on
/// empty-cell searches and audits; only very large, very sparse tables reach it, and are then
/// withheld (the budget is per table, so a table's fate does not depend on the query).
const WORK_BUDGET: usize = 4_000_000;

/// Position of a dimension in [`Dimension::ALL`] (and in a [`Key`]).
pub(super) fn dim_index(d: Dimension) -> usize {
    match d {
        Dimension::Year => 0,
        Dimension::Quarter => 1,
        Dimension::Month => 2,
        Dimension::Sector => 3,
        Dimension::SbiSection => 4,
        Dimension::DiagnosisGroup => 5,
        Dimension::Diagnosis => 6,
        Dimension::ExposureGroup => 7,
        Dimension::Exposure => 8,
        Dimension::Sex => 9,
        Dimension::AgeBand => 10,
        Dimension::DetectionRoute => 11,
        Dimension::Consequence => 12,
    }
}

/// The attribute of a dimension and its level (1-based).
pub(super) fn attr_level(d: Dimension) -> (usize, u8) {
    for (a, levels) in ATTRS.iter().enumerate() {
        if let Some(l) = levels.iter().position(|x| *x == d) {
            return (a, (l + 1) as u8);
        }
    }
    (0, 0)
}

/// The dimensions a grid's keys carry: every attribute's levels down to the grid's level.
pub(super) fn grid_dims(grid: &Grid) -> Vec<Dimension> {
    let mut dims = Vec::new();
    for (a, levels) in ATTRS.iter().enumerate() {
        dims.extend_from_slice(&levels[..grid[a] as usize]);
    }
    dims
}

/// `key` with every dimension outside `grid` removed.
pub(super) fn project(key: &Key, grid: &Grid) -> Key {
    let mut out = [NONE; NDIM];
    for (a, levels) in ATTRS.iter().enumerate() {
        for d in &levels[..grid[a] as usize] {
            let i = dim_index(*d);
            out[i] = key[i];
        }
    }
    out
}

/// Whether `coarse` is a coarsening of `fine` (or equal).
pub(super) fn coarsens(coarse: &Grid, fine: &Grid) -> bool {
    coarse.iter().zip(fine).all(|(c, f)| c <= f)
}

/// Every coarsening of `top` (including `top`), coarsest first (by total level, then grid).
pub(super) fn coarsenings(top: &Grid) -> Vec<Grid> {
    let mut grids = vec![[0u8; NATTR]];
    for a in 0..NATTR {
        let mut next = Vec::with_capacity(grids.len() * (top[a] as usize + 1));
        for g in &grids {
            for l in 0..=top[a] {
                let mut g2 = *g;
                g2[a] = l;
                next.push(g2);
            }
        }
        grids = next;
    }
    grids.sort_by_key(|g| (g.iter().map(|l| *l as u32).sum::<u32>(), *g));
    grids
}

/// The number of tables of a grid's lattice.
pub(super) fn lattice_size(top: &Grid) -> usize {
    top.iter().map(|l| *l as usize + 1).product()
}

/// Primary suppression and group rules of one audience.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules {
    pub min_count: i64,
    pub min_reporters: usize,
}

impl Rules {
    fn primary(&self, count: i64, reporters: usize) -> bool {
        count > 0 && (count < self.min_count || reporters < self.min_reporters)
    }
}

/// One table: the exact cells of a grid, and which are suppressed. Cells with count 0 exist
/// only as suppressed empty cells (added as complementary suppressions).
#[derive(Debug, Clone)]
pub(super) struct Table {
    pub grid: Grid,
    pub keys: Vec<Key>,
    pub index: HashMap<Key, u32>,
    pub count: Vec<i64>,
    /// Distinct reporter ids per cell (sorted), when the rules need them.
    pub reporters: Vec<Vec<u32>>,
    pub suppressed: Vec<bool>,
    /// Complementary suppression could not protect this table: it is not published at all.
    pub withheld: bool,
}

impl Table {
    fn fold(grid: Grid, base: &[(Key, i64, Vec<u32>)]) -> Table {
        let mut t = Table {
            grid,
            keys: Vec::new(),
            index: HashMap::new(),
            count: Vec::new(),
            reporters: Vec::new(),
            suppressed: Vec::new(),
            withheld: false,
        };
        for (key, n, reporters) in base {
            let k = project(key, &grid);
            let i = match t.index.get(&k) {
                Some(i) => *i as usize,
                None => t.push(k, 0),
            };
            t.count[i] += n;
            t.reporters[i].extend_from_slice(reporters);
        }
        for r in &mut t.reporters {
            r.sort_unstable();
            r.dedup();
        }
        t
    }

    fn push(&mut self, key: Key, count: i64) -> usize {
        let i = self.keys.len();
        self.index.insert(key, i as u32);
        self.keys.push(key);
        self.count.push(count);
        self.reporters.push(Vec::new());
        self.suppressed.push(false);
        i
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// The observed value paths of each attribute and level: `paths[a][l]` holds every observed
/// `(level 1 value, ..., level l value)` of attribute `a`, sorted.
type Paths = Vec<Vec<Vec<Vec<u32>>>>;

fn observed_paths(top: &Grid, base: &[(Key, i64, Vec<u32>)]) -> Paths {
    let mut paths: Paths = Vec::with_capacity(NATTR);
    for (a, levels) in ATTRS.iter().enumerate() {
        let mut per_level = vec![Vec::new()];
        for l in 1..=top[a] as usize {
            let set: BTreeSet<Vec<u32>> = base
                .iter()
                .map(|(k, _, _)| levels[..l].iter().map(|d| k[dim_index(*d)]).collect())
                .collect();
            per_level.push(set.into_iter().collect());
        }
        paths.push(per_level);
    }
    paths
}

/// The whole lattice of a grid, every table with its final pattern.
#[derive(Debug, Clone)]
pub(super) struct Lattice {
    pub tables: Vec<Table>,
    pub by_grid: HashMap<Grid, usize>,
    /// Tables withheld because complementary suppression could not protect them (0 in all but
    /// very sparse or degenerate tables).
    pub withheld: usize,
}

struct Group {
    table: usize,
    cell: u32,
    members: Vec<u32>,
    /// Suppressed members and their total count.
    hidden: usize,
    hidden_sum: i64,
}

enum Pick {
    Cell(usize),
    Empty(Key),
    Nothing,
}

impl Lattice {
    /// Builds every table at or below `top` from the base cells (keys at `top`, nonzero
    /// counts, distinct reporter ids) and suppresses each, coarsest first.
    pub fn build(top: Grid, base: &[(Key, i64, Vec<u32>)], rules: Rules) -> Lattice {
        let grids = coarsenings(&top);
        let paths = observed_paths(&top, base);
        let mut tables: Vec<Table> = grids.iter().map(|g| Table::fold(*g, base)).collect();
        let mut withheld = 0;
        for ti in 0..tables.len() {
            let (done, rest) = tables.split_at_mut(ti);
            let Some(table) = rest.first_mut() else {
                break;
            };
            // withheld tables show nothing, so they constrain nothing
            let coarser: Vec<usize> = (0..ti)
                .filter(|j| !done[*j].withheld && coarsens(&done[*j].grid, &table.grid))
                .collect();
            if suppress_table(table, done, &coarser, &paths, rules) > 0 {
                table.withheld = true;
                table.suppressed.iter_mut().for_each(|s| *s = true);
                withheld += 1;
            }
        }
        let by_grid = tables
            .iter()
            .enumerate()
            .map(|(i, t)| (t.grid, i))
            .collect();
        Lattice {
            tables,
            by_grid,
            withheld,
        }
    }
}

/// Primary suppression of `t`, then complementary suppression against every coarser table
/// until every group rule holds (as far as cells are left to suppress) and the audit pins no
/// primary-suppressed cell. Returns how many such cells could not be protected (or 1 when the
/// work budget ran out): the table is then withheld.
fn suppress_table(
    t: &mut Table,
    coarse: &[Table],
    coarser: &[usize],
    paths: &Paths,
    rules: Rules,
) -> usize {
    for i in 0..t.len() {
        t.suppressed[i] = rules.primary(t.count[i], t.reporters[i].len());
    }
    let mut work = Work::new(t, coarse, coarser, paths, rules, WORK_BUDGET);
    work.settle();
    while work.audit() {
        work.settle();
    }
    work.unresolved()
}

/// Complementary suppression of one table: the groups (for every coarser table and each of its
/// cells, the cells of this table inside it) and a queue of groups to check.
struct Work<'a> {
    t: &'a mut Table,
    coarse: &'a [Table],
    coarser: &'a [usize],
    paths: &'a Paths,
    rules: Rules,
    groups: Vec<Group>,
    group_of: HashMap<(usize, u32), usize>,
    cell_groups: Vec<Vec<usize>>,
    empty_memo: HashMap<(usize, u32), Option<Key>>,
    queue: VecDeque<usize>,
    queued: Vec<bool>,
    /// Suppressed cells the audit pins and cannot protect.
    exposed: BTreeSet<usize>,
    /// Work left for empty-cell searches and the audit (bounds the time per table).
    budget: usize,
}

impl<'a> Work<'a> {
    fn new(
        t: &'a mut Table,
        coarse: &'a [Table],
        coarser: &'a [usize],
        paths: &'a Paths,
        rules: Rules,
        budget: usize,
    ) -> Work<'a> {
        let cells = t.len();
        let mut work = Work {
            t,
            coarse,
            coarser,
            paths,
            rules,
            groups: Vec::new(),
            group_of: HashMap::new(),
            cell_groups: vec![Vec::new(); cells],
            empty_memo: HashMap::new(),
            queue: VecDeque::new(),
            queued: Vec::new(),
            exposed: BTreeSet::new(),
            budget,
        };
        for &j in coarser {
            let h = &coarse[j];
            for i in 0..cells {
                let Some(&hc) = h.index.get(&project(&work.t.keys[i], &h.grid)) else {
                    continue;
                };
                let g = work.join(j, hc);
                let group = &mut work.groups[g];
                group.members.push(i as u32);
                if work.t.suppressed[i] {
                    group.hidden += 1;
                    group.hidden_sum += work.t.count[i];
                }
                work.cell_groups[i].push(g);
            }
            // suppressed empty cells of the coarser table need a suppressed cell inside too
            for hc in 0..h.len() {
                if h.suppressed[hc] && h.count[hc] == 0 {
                    work.join(j, hc as u32);
                }
            }
        }
        for g in 0..work.groups.len() {
            work.enqueue(g);
        }
        work
    }

    fn join(&mut self, j: usize, hc: u32) -> usize {
        if let Some(g) = self.group_of.get(&(j, hc)) {
            return *g;
        }
        self.groups.push(Group {
            table: j,
            cell: hc,
            members: Vec::new(),
            hidden: 0,
            hidden_sum: 0,
        });
        self.queued.push(false);
        let g = self.groups.len() - 1;
        self.group_of.insert((j, hc), g);
        g
    }

    fn enqueue(&mut self, g: usize) {
        if !self.queued[g] {
            self.queued[g] = true;
            self.queue.push_back(g);
        }
    }

    fn suppress(&mut self, i: usize) {
        if self.t.suppressed[i] {
            return;
        }
        self.t.suppressed[i] = true;
        for k in 0..self.cell_groups[i].len() {
            let g = self.cell_groups[i][k];
            self.groups[g].hidden += 1;
            self.groups[g].hidden_sum += self.t.count[i];
            self.enqueue(g);
        }
    }

    fn add_empty(&mut self, key: Key) {
        let i = self.t.push(key, 0);
        self.t.suppressed[i] = true;
        self.cell_groups.push(Vec::new());
        for &j in self.coarser {
            let h = &self.coarse[j];
            let Some(&hc) = h.index.get(&project(&key, &h.grid)) else {
                continue;
            };
            let g = self.join(j, hc);
            self.groups[g].members.push(i as u32);
            self.groups[g].hidden += 1;
            self.cell_groups[i].push(g);
            self.enqueue(g);
        }
    }

    /// Repairs violated groups until every rule holds or nothing is left to suppress.
    fn settle(&mut self) {
        while let Some(g) = self.queue.pop_front() {
            self.queued[g] = false;
            if self.ok(g) {
                continue;
            }
            match self.pick(g) {
                Pick::Cell(i) => self.suppress(i),
                Pick::Empty(key) => self.add_empty(key),
                Pick::Nothing => continue,
            }
            self.enqueue(g);
        }
    }

    /// The group rule for the cells of `t` inside one cell of a coarser table.
    fn ok(&self, g: usize) -> bool {
        let group = &self.groups[g];
        if self.coarse[group.table].suppressed[group.cell as usize] {
            // a withheld coarser cell must not be the sum of published finer cells
            return group.hidden > 0;
        }
        if group.hidden == 0 {
            return true;
        }
        let (k, sum) = (group.hidden as i64, group.hidden_sum);
        if k < 2 || sum < self.rules.min_count || sum == k {
            return false;
        }
        if self.rules.min_reporters > 0 {
            let t = &self.t;
            let mut all: Vec<u32> = group
                .members
                .iter()
                .map(|i| *i as usize)
                .filter(|i| t.suppressed[*i])
                .flat_map(|i| t.reporters[i].iter().copied())
                .collect();
            all.sort_unstable();
            all.dedup();
            if all.len() < self.rules.min_reporters {
                return false;
            }
        }
        true
    }

    /// The next cell to suppress for a violated group: the smallest published cell inside it
    /// (ties by key) that is not *locked*, else an empty cell inside it that cannot be known to
    /// be empty.
    fn pick(&mut self, g: usize) -> Pick {
        if let Some(i) = self.smallest_unlocked(g) {
            return Pick::Cell(i);
        }
        match self.empty_inside(g) {
            Some(key) => Pick::Empty(key),
            None => Pick::Nothing,
        }
    }

    fn smallest_unlocked(&mut self, g: usize) -> Option<usize> {
        let mut candidates: Vec<usize> = self.groups[g]
            .members
            .iter()
            .map(|i| *i as usize)
            .filter(|i| !self.t.suppressed[*i])
            .collect();
        candidates.sort_by_key(|i| (self.t.count[*i], self.t.keys[*i]));
        candidates.into_iter().find(|i| !self.locked(*i))
    }

    /// Whether suppressing cell `i` would leave it the only suppressed cell inside a published
    /// coarser cell with no other cell and no usable empty cell: it then holds exactly that
    /// coarser cell's records, its value is public, and it protects nothing.
    fn locked(&mut self, i: usize) -> bool {
        for k in 0..self.cell_groups[i].len() {
            let g = self.cell_groups[i][k];
            let group = &self.groups[g];
            if !self.coarse[group.table].suppressed[group.cell as usize]
                && group.members.iter().all(|m| *m as usize == i)
                && self.empty_inside(g).is_none()
            {
                return true;
            }
        }
        false
    }

    /// A usable empty cell inside a group's coarser cell (memoized: the coarser tables are
    /// final, and this table only gains cells, so a failed search stays failed).
    fn empty_inside(&mut self, g: usize) -> Option<Key> {
        let id = (self.groups[g].table, self.groups[g].cell);
        if let Some(found) = self.empty_memo.get(&id) {
            match found {
                None => return None,
                Some(key) if !self.t.index.contains_key(key) => return Some(*key),
                Some(_) => {}
            }
        }
        let h = &self.coarse[id.0];
        let found = find_empty(
            self.t,
            self.coarse,
            self.coarser,
            self.paths,
            &h.keys[id.1 as usize],
            &h.grid,
            &mut self.budget,
        );
        self.empty_memo.insert(id, found);
        found
    }

    /// Plays the attacker: interval propagation over every published coarser cell (its
    /// suppressed cells inside sum to its count minus the published ones), once with every
    /// suppressed cell `>= 0` and once with the non-empty ones `>= 1`. A suppressed non-empty
    /// cell whose interval closes is protected by suppressing the smallest unlocked published
    /// cell of one of its groups. Returns whether anything was suppressed.
    fn audit(&mut self) -> bool {
        let mut eqs: Vec<(Vec<usize>, i64)> = Vec::new();
        for group in &self.groups {
            if group.hidden == 0 || self.coarse[group.table].suppressed[group.cell as usize] {
                continue;
            }
            let hidden: Vec<usize> = group
                .members
                .iter()
                .map(|i| *i as usize)
                .filter(|i| self.t.suppressed[*i])
                .collect();
            if !hidden.is_empty() {
                let sum = hidden.iter().map(|i| self.t.count[*i]).sum();
                eqs.push((hidden, sum));
            }
        }
        if eqs.is_empty() {
            return false;
        }
        // the attacker's starting points: every suppressed cell >= 0 (sound: suppressed cells
        // may be empty), and every listed cell >= 1 (what one would assume without that note;
        // when the published numbers contradict it somewhere, the assumption is known to be
        // wrong and gives no certainty; otherwise only intervals that close on the true value
        // count)
        let mut pinned: BTreeSet<usize> = BTreeSet::new();
        for nonempty in [false, true] {
            let lower: Vec<i64> = (0..self.t.len())
                .map(|i| i64::from(nonempty && self.t.suppressed[i]))
                .collect();
            let bounds = propagate(&lower, &eqs, &mut self.budget).ok();
            for (i, (lo, hi)) in bounds.iter().flatten().enumerate() {
                // only what primary suppression protects is secret: a secondary cell passes
                // the publication rules (and may hold exactly the records of a published cell)
                let secret = self
                    .rules
                    .primary(self.t.count[i], self.t.reporters[i].len());
                if self.t.suppressed[i] && secret && lo == hi && *lo == self.t.count[i] {
                    pinned.insert(i);
                }
            }
        }
        let mut changed = false;
        for p in pinned {
            if self.exposed.contains(&p) {
                continue;
            }
            // the tightest published coarser cells around it first: a pin comes from small
            // equations, so loosen one of those (another cell, or an empty one, inside it)
            let mut groups: Vec<usize> = self.cell_groups[p]
                .iter()
                .copied()
                .filter(|g| {
                    let group = &self.groups[*g];
                    !self.coarse[group.table].suppressed[group.cell as usize]
                })
                .collect();
            groups.sort_by_key(|g| {
                let group = &self.groups[*g];
                (self.coarse[group.table].count[group.cell as usize], *g)
            });
            let mut fixed = false;
            for g in groups.iter().copied() {
                if let Some(i) = self.smallest_unlocked(g) {
                    self.suppress(i);
                    fixed = true;
                } else if let Some(key) = self.empty_inside(g) {
                    self.add_empty(key);
                    fixed = true;
                }
                if fixed {
                    break;
                }
            }
            if fixed {
                changed = true;
            } else {
                self.exposed.insert(p);
            }
        }
        changed
    }

    /// What is left unprotected: secret cells the audit pins, or a table too large to audit.
    /// (A group rule that cannot be met, say a withheld total below the threshold because
    /// every other cell is locked, gives away no cell by itself; the audit decides.)
    fn unresolved(&self) -> usize {
        self.exposed.len() + usize::from(self.budget == 0)
    }
}

/// Interval propagation (sound bounds for any solution with `x_i >= lower[i]`) over equations
/// `sum(x_i for i in members) = total`; `Err(e)` when equation `e` contradicts the bounds.
/// Each member visit costs one unit of `budget`; the propagation stops (with the bounds found
/// so far, which are sound) when it runs out.
pub(super) fn propagate(
    lower: &[i64],
    eqs: &[(Vec<usize>, i64)],
    budget: &mut usize,
) -> Result<Vec<(i64, i64)>, usize> {
    const INF: i64 = i64::MAX / 4;
    let mut b: Vec<(i64, i64)> = lower.iter().map(|l| (*l, INF)).collect();
    for _ in 0..64 {
        let mut changed = false;
        for (e, (members, total)) in eqs.iter().enumerate() {
            if *budget < members.len() {
                *budget = 0;
                return Ok(b);
            }
            *budget -= members.len();
            let lo_sum: i64 = members.iter().map(|i| b[*i].0).sum();
            let hi_sum: i64 = members
                .iter()
                .fold(0i64, |acc, i| acc.saturating_add(b[*i].1))
                .min(INF);
            if lo_sum > *total || (hi_sum < INF && hi_sum < *total) {
                return Err(e);
            }
            for i in members {
                let (lo, hi) = b[*i];
                let new_lo = if hi_sum >= INF {
                    lo
                } else {
                    lo.max(total - (hi_sum - hi))
                };
                let new_hi = hi.min(total - (lo_sum - lo));
                if (new_lo, new_hi) != (lo, hi) && new_lo <= new_hi {
                    b[*i] = (new_lo, new_hi);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    Ok(b)
}

/// An empty cell of `t` inside the coarser cell `hkey` (of grid `hgrid`) whose projection onto
/// every coarser table is a listed cell there (so no coarser table shows it to be empty).
fn find_empty(
    t: &Table,
    coarse: &[Table],
    coarser: &[usize],
    paths: &Paths,
    hkey: &Key,
    hgrid: &Grid,
    budget: &mut usize,
) -> Option<Key> {
    let mut choices: Vec<(usize, Vec<&[u32]>)> = Vec::new();
    for (a, levels) in ATTRS.iter().enumerate() {
        let (tl, hl) = (t.grid[a] as usize, hgrid[a] as usize);
        if tl == hl {
            continue;
        }
        let prefix: Vec<u32> = levels[..hl].iter().map(|d| hkey[dim_index(*d)]).collect();
        let candidates: Vec<&[u32]> = paths[a][tl]
            .iter()
            .filter(|p| p[..hl] == prefix[..])
            .map(|p| p.as_slice())
            .collect();
        if candidates.is_empty() {
            return None;
        }
        choices.push((a, candidates));
    }
    if choices.is_empty() {
        return None;
    }
    let mut at = vec![0usize; choices.len()];
    for _ in 0..ZERO_SEARCH_LIMIT {
        if *budget < coarser.len() {
            *budget = 0;
            return None;
        }
        *budget -= coarser.len();
        let mut key = *hkey;
        for (c, (a, candidates)) in choices.iter().enumerate() {
            for (l, v) in candidates[at[c]].iter().enumerate() {
                key[dim_index(ATTRS[*a][l])] = *v;
            }
        }
        if !t.index.contains_key(&key)
            && coarser.iter().all(|j| {
                coarse[*j]
                    .index
                    .contains_key(&project(&key, &coarse[*j].grid))
            })
        {
            return Some(key);
        }
        // next combination (odometer, last attribute fastest)
        let mut c = choices.len();
        loop {
            if c == 0 {
                return None;
            }
            c -= 1;
            at[c] += 1;
            if at[c] < choices[c].1.len() {
                break;
            }
            at[c] = 0;
        }
    }
    None
}
