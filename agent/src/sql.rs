//! The SQL source: where a hospital allows it, one query per type against
//! the HIS database (PostgreSQL or MySQL through sqlx), each returning
//! columns named by field code; the result becomes a CSV upload and goes the
//! same way as an export file.
//!
//! ```text
//!  database_url_file ─▶ AnyPool (postgres:// | mysql://, 1 connection, read only use)
//!  [[source.sql]] {type, query} ─▶ rows ─▶ every column as text ─▶ CSV (header = column names) ─▶ SourceFile
//! ```
//! Columns must be text or numbers (cast dates in the query: PostgreSQL
//! `to_char(x, 'YYYY-MM-DD HH24:MI:SS')`, MySQL `DATE_FORMAT(x, '%Y-%m-%d %H:%i:%s')`).

use sqlx::{Column, Row, ValueRef};

use flumon_shared::model::RecordType;

use crate::Error;
use crate::config::SqlQuery;
use crate::source::SourceFile;

fn text(row: &sqlx::any::AnyRow, i: usize) -> Result<String, Error> {
    let raw = row.try_get_raw(i).map_err(|e| Error::Source(e.to_string()))?;
    if raw.is_null() {
        return Ok(String::new());
    }
    if let Ok(s) = row.try_get::<String, _>(i) {
        return Ok(s);
    }
    if let Ok(n) = row.try_get::<i64, _>(i) {
        return Ok(n.to_string());
    }
    if let Ok(n) = row.try_get::<i32, _>(i) {
        return Ok(n.to_string());
    }
    if let Ok(n) = row.try_get::<f64, _>(i) {
        return Ok(n.to_string());
    }
    if let Ok(b) = row.try_get::<bool, _>(i) {
        return Ok(if b { "1".into() } else { "0".into() });
    }
    Err(Error::Source(format!(
        "第 {} 列 ({}) 的类型无法读取; 请在查询中转换为文本 (cast the column to text)",
        i + 1,
        row.columns().get(i).map(|c| c.name()).unwrap_or_default()
    )))
}

/// Runs every query; one SourceFile per query.
pub async fn run_queries(url: &str, queries: &[SqlQuery]) -> Result<Vec<SourceFile>, Error> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .map_err(|e| Error::Source(format!("无法连接 HIS 数据库 (cannot connect): {e}")))?;
    let mut out = Vec::new();
    for q in queries {
        let ty =
            RecordType::parse(&q.ty).ok_or_else(|| Error::Source(format!("[[source.sql]] 未知的记录类型 {}", q.ty)))?;
        // the query is the hospital's own configuration (agent.toml), not outside input
        let rows = sqlx::query(sqlx::AssertSqlSafe(q.query.clone()))
            .fetch_all(&pool)
            .await
            .map_err(|e| Error::Source(format!("{} 查询失败 (query failed): {e}", q.ty)))?;
        let mut w = csv::Writer::from_writer(Vec::new());
        if let Some(first) = rows.first() {
            w.write_record(first.columns().iter().map(|c| c.name().to_ascii_uppercase()))
                .map_err(|e| Error::Source(e.to_string()))?;
        } else {
            // an empty result: the header of the type's table (a valid empty upload)
            let td = flumon_shared::model::type_def(ty);
            w.write_record(td.fields.iter().map(|f| f.code.as_str())).map_err(|e| Error::Source(e.to_string()))?;
        }
        for r in &rows {
            let rec: Result<Vec<String>, Error> = (0..r.columns().len()).map(|i| text(r, i)).collect();
            w.write_record(rec?).map_err(|e| Error::Source(e.to_string()))?;
        }
        let bytes = w.into_inner().map_err(|e| Error::Source(e.to_string()))?;
        out.push(SourceFile { ty, name: format!("sql:{}", q.ty), bytes, content_type: Some("text/csv") });
    }
    pool.close().await;
    Ok(out)
}
