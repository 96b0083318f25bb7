//! MEM step 1: the input table (weeks × seasons, as the R package `mem`
//! lays out its example data) and flumon's filling of interior missing
//! weeks by linear interpolation (MEM.md: flumon does not use `mem`'s
//! kernel-regression fill; results are equal when no week is missing).
//!
//! ```text
//!  CSV: week,2001/2002,2002/2003,…   ─▶ MemData { weeks: ["40",…], seasons: [{name, values}] }
//!       40,5.38,0,…   ("" or NA = missing)
//!  fill_interior: NA between the first and last value ─▶ linear interpolation (noted per week)
//! ```

use serde::Serialize;

use crate::Error;

/// One season's weekly values (`None` = missing).
#[derive(Clone, Debug, PartialEq)]
pub struct SeasonSeries {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// The weeks × seasons table.
#[derive(Clone, Debug, PartialEq)]
pub struct MemData {
    /// Week labels (the first column).
    pub weeks: Vec<String>,
    /// Seasons, oldest first.
    pub seasons: Vec<SeasonSeries>,
}

/// A week whose value was interpolated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Interpolated {
    pub season: String,
    pub week: String,
    pub value: f64,
}

fn parse_cell(s: &str) -> Result<Option<f64>, Error> {
    let t = s.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("NA") {
        return Ok(None);
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(Error::BadRequest(format!("数值无法识别 (not a number): {t:.40}"))),
    }
}

/// Reads the CSV layout of `mem`'s example data: a header row, the first
/// column the week labels, then one column per season, oldest first.
pub fn read_csv(text: &str) -> Result<MemData, Error> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(text.as_bytes());
    let header = rdr.headers().map_err(|e| Error::BadRequest(format!("CSV 表头无法读取 (bad header): {e}")))?.clone();
    let names: Vec<String> = header.iter().skip(1).map(|s| s.trim().to_string()).collect();
    if names.is_empty() {
        return Err(Error::BadRequest("CSV 中没有流行季列 (no season columns)".into()));
    }
    let mut weeks = Vec::new();
    let mut cols: Vec<Vec<Option<f64>>> = vec![Vec::new(); names.len()];
    for rec in rdr.records() {
        let rec = rec.map_err(|e| Error::BadRequest(format!("CSV 行无法读取 (bad row): {e}")))?;
        let mut cells = rec.iter();
        weeks.push(cells.next().unwrap_or("").trim().to_string());
        for (col, cell) in cols.iter_mut().zip(cells) {
            col.push(parse_cell(cell)?);
        }
    }
    let seasons = names.into_iter().zip(cols).map(|(name, values)| SeasonSeries { name, values }).collect();
    Ok(MemData { weeks, seasons })
}

/// Fills the missing values strictly between the first and last present
/// value of each season by linear interpolation; returns what was filled.
pub fn fill_interior(data: &mut MemData) -> Vec<Interpolated> {
    let mut filled = Vec::new();
    for s in &mut data.seasons {
        let present: Vec<usize> = s.values.iter().enumerate().filter(|(_, v)| v.is_some()).map(|(i, _)| i).collect();
        for pair in present.windows(2) {
            let &[a, b] = pair else { continue };
            if b <= a + 1 {
                continue;
            }
            let (Some(Some(va)), Some(Some(vb))) = (s.values.get(a).copied(), s.values.get(b).copied()) else {
                continue;
            };
            for i in a + 1..b {
                let v = va + (vb - va) * (i - a) as f64 / (b - a) as f64;
                if let Some(slot) = s.values.get_mut(i) {
                    *slot = Some(v);
                }
                filled.push(Interpolated {
                    season: s.name.clone(),
                    week: data.weeks.get(i).cloned().unwrap_or_default(),
                    value: v,
                });
            }
        }
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_weeks_and_seasons() {
        let d = read_csv("week,2019/2020,2020/2021\n40,1.5,NA\n41,,2\n42,3,4\n").unwrap();
        assert_eq!(d.weeks, vec!["40", "41", "42"]);
        assert_eq!(d.seasons.len(), 2);
        assert_eq!(d.seasons[0].name, "2019/2020");
        assert_eq!(d.seasons[0].values, vec![Some(1.5), None, Some(3.0)]);
        assert_eq!(d.seasons[1].values, vec![None, Some(2.0), Some(4.0)]);
        assert!(read_csv("week,a\n40,x\n").is_err());
        assert!(read_csv("week\n40\n").is_err());
    }

    #[test]
    fn interior_gaps_are_interpolated_edges_are_not() {
        let mut d = read_csv("w,s\n1,\n2,1\n3,\n4,\n5,7\n6,\n").unwrap();
        let f = fill_interior(&mut d);
        assert_eq!(d.seasons[0].values, vec![None, Some(1.0), Some(3.0), Some(5.0), Some(7.0), None]);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].week.as_str(), f[0].value), ("3", 3.0));
    }
}
