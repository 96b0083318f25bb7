//! Cells as shown: counts, with counts of 1–4 shown as `<5` to accounts
//! below national scope, and the complementary suppression of a second cell
//! where a shown total would reveal a suppressed one; ratios and means whose
//! parts are hidden are hidden too.
//!
//! ```text
//!  count n ─▶ small_cells && 1 ≤ n ≤ 4 ─▶ "<5"          else n
//!  group {total, parts}: exactly one part "<5" and total shown ─▶ the smallest other non-zero part ─▶ "—"
//!  ratio num/den: num or den hidden ─▶ value null
//! ```

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

/// A count as shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    Value(i64),
    /// 1–4, shown as `<5`.
    Small,
    /// Hidden so that a total does not reveal a `<5` cell: shown as `—`.
    Hidden,
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Value(v) => s.serialize_i64(*v),
            Cell::Small => s.serialize_str("<5"),
            Cell::Hidden => s.serialize_str("—"),
        }
    }
}

impl Cell {
    /// A count under the small-cell rule.
    pub fn count(n: i64, small_cells: bool) -> Cell {
        if small_cells && (1..5).contains(&n) { Cell::Small } else { Cell::Value(n) }
    }

    /// The value when shown.
    pub fn shown(self) -> Option<i64> {
        match self {
            Cell::Value(v) => Some(v),
            _ => None,
        }
    }
}

/// A total and its breakdown (a partition of the total).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    pub total: Cell,
    pub parts: BTreeMap<String, Cell>,
}

/// Builds a group, applying the small-cell and complementary rules.
pub fn group(total: i64, parts: &BTreeMap<String, i64>, small_cells: bool) -> Group {
    let total_cell = Cell::count(total, small_cells);
    let mut cells: BTreeMap<String, Cell> =
        parts.iter().map(|(k, v)| (k.clone(), Cell::count(*v, small_cells))).collect();
    complement(&mut cells, parts, total_cell.shown().is_some());
    Group { total: total_cell, parts: cells }
}

/// Hides a second cell where a shown total would reveal the only `<5` one.
pub fn complement(cells: &mut BTreeMap<String, Cell>, values: &BTreeMap<String, i64>, total_shown: bool) {
    let small = cells.values().filter(|c| **c == Cell::Small).count();
    if small != 1 || !total_shown {
        return;
    }
    let second = values
        .iter()
        .filter(|(k, v)| **v > 0 && matches!(cells.get(*k), Some(Cell::Value(_))))
        .min_by_key(|(k, v)| (**v, (*k).clone()))
        .map(|(k, _)| k.clone());
    if let Some(k) = second {
        cells.insert(k, Cell::Hidden);
    }
}

/// A proportion or rate: numerator, denominator, value (null when hidden or undefined).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Ratio {
    pub num: Cell,
    pub den: Cell,
    pub value: Option<f64>,
}

/// A ratio of two counts of people (both under the small-cell rule).
pub fn ratio(num: i64, den: i64, small_cells: bool) -> Ratio {
    let (n, d) = (Cell::count(num, small_cells), Cell::count(den, small_cells));
    let value = match (n, d) {
        (Cell::Value(a), Cell::Value(b)) if b > 0 => Some(a as f64 / b as f64),
        _ => None,
    };
    Ratio { num: n, den: d, value }
}

/// A ratio of quantities that are not counts of people (rows, fields, money).
pub fn plain_ratio(num: i64, den: i64) -> Ratio {
    Ratio { num: Cell::Value(num), den: Cell::Value(den), value: (den > 0).then(|| num as f64 / den as f64) }
}

/// A mean over people (`n` under the small-cell rule), `sum / n / scale`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Mean {
    pub n: Cell,
    pub value: Option<f64>,
}

/// The mean of `sum` over `n` people, divided by `scale` (100 for 分 → 元).
pub fn mean(sum: i64, n: i64, scale: f64, small_cells: bool) -> Mean {
    let c = Cell::count(n, small_cells);
    Mean { n: c, value: (c.shown().is_some() && n > 0).then(|| sum as f64 / n as f64 / scale) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(xs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        xs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn small_and_complementary() {
        assert_eq!(Cell::count(3, true), Cell::Small);
        assert_eq!(Cell::count(3, false), Cell::Value(3));
        assert_eq!(Cell::count(0, true), Cell::Value(0));
        assert_eq!(Cell::count(5, true), Cell::Value(5));
        let g = group(23, &m(&[("1", 3), ("2", 12), ("9", 8)]), true);
        assert_eq!(g.parts["1"], Cell::Small);
        assert_eq!(g.parts["9"], Cell::Hidden);
        assert_eq!(g.parts["2"], Cell::Value(12));
        // Two small cells: the total reveals only their sum.
        let g = group(20, &m(&[("1", 3), ("2", 2), ("9", 15)]), true);
        assert_eq!(g.parts["9"], Cell::Value(15));
        // Nationally nothing is hidden.
        let g = group(23, &m(&[("1", 3), ("2", 20)]), false);
        assert_eq!(g.parts["1"], Cell::Value(3));
        assert_eq!(serde_json::to_string(&g).unwrap(), r#"{"total":23,"parts":{"1":3,"2":20}}"#);
        let g = group(23, &m(&[("1", 3), ("2", 20)]), true);
        assert_eq!(serde_json::to_string(&g).unwrap(), r#"{"total":23,"parts":{"1":"<5","2":"—"}}"#);
        let r = ratio(3, 20, true);
        assert_eq!(r.value, None);
        assert_eq!(ratio(6, 20, true).value, Some(0.3));
        assert_eq!(mean(1000, 4, 100.0, true).value, None);
        assert_eq!(mean(1000, 4, 100.0, false).value, Some(2.5));
    }
}
