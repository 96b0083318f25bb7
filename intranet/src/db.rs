//! The database: sqlx's `Any` driver over SQLite (the embedded default, a
//! file in WAL mode) or PostgreSQL, chosen by `database_url`, with the
//! embedded migrations run at open.
//!
//! ```text
//!  database_url ─ sqlite://FILE ─▶ WAL, synchronous = FULL, busy timeout 10 s
//!               └ postgres://…  ─▶ pool
//!  Db::begin_write ─▶ SQLite: BEGIN IMMEDIATE (write lock up front) │ PostgreSQL: BEGIN
//!  Db::open ─▶ migrations/*.sql (one schema text both backends accept) ─▶ old unit_contrib rows packed
//!          ─▶ regions loaded
//! ```

use std::borrow::Cow;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyPool, AssertSqlSafe, Executor, SqlSafeStr, Transaction};

use crate::{Error, Result};

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The pool and its backend.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "accounts", include_str!("../migrations/0002_accounts.sql")),
    (3, "region_rollup", include_str!("../migrations/0003_region_rollup.sql")),
    (4, "unit_contrib_packed", include_str!("../migrations/0004_unit_contrib_packed.sql")),
    (5, "stock_latest", include_str!("../migrations/0005_stock_latest.sql")),
];

fn migrator() -> Migrator {
    let migrations: Vec<Migration> = MIGRATIONS
        .iter()
        .map(|(v, d, sql)| {
            Migration::new(*v, Cow::Borrowed(*d), MigrationType::Simple, AssertSqlSafe(*sql).into_sql_str(), false)
        })
        .collect();
    Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT }
}

impl Db {
    /// A bare pool without migrations (test set-up of PostgreSQL schemas).
    pub async fn open_raw(url: &str) -> Result<AnyPool> {
        install_default_drivers();
        Ok(AnyPoolOptions::new().max_connections(1).connect(url).await?)
    }

    /// Opens (creating a SQLite file when needed) and migrates.
    pub async fn open(url: &str) -> Result<Db> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(Error::Config("database_url 须以 sqlite: 或 postgres: 开头 (unsupported database_url)".into()));
        };
        let pool = match backend {
            Backend::Sqlite => {
                let url = if url.contains('?') { url.to_string() } else { format!("{url}?mode=rwc") };
                let pool = AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // cache: 64 MiB per connection (SQLite's default is 2 MiB, so a big
                            // database was read page by page through pread); reads beyond it
                            // through a shared memory map (up to SQLite's 2 GiB limit).
                            conn.execute(
                                "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; \
                                 PRAGMA cache_size = -65536; PRAGMA mmap_size = 2147418112; \
                                 PRAGMA temp_store = MEMORY;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?;
                pool.execute("PRAGMA journal_mode = WAL").await?;
                pool
            }
            Backend::Postgres => AnyPoolOptions::new().max_connections(8).connect(url).await?,
        };
        migrator().run(&pool).await?;
        let db = Db { pool, backend };
        crate::ingest::pack_legacy_contribs(&db).await?;
        crate::regions::load(&db).await?;
        Ok(db)
    }

    /// A transaction that will write.
    ///
    /// On SQLite it starts with `BEGIN IMMEDIATE`: the write lock is taken at
    /// the start, where the busy timeout waits for other writers. A plain
    /// (deferred) `BEGIN` that reads first and writes later fails at its first
    /// write with `SQLITE_BUSY_SNAPSHOT` (code 517, "database is locked")
    /// whenever another connection committed in between (a session refresh, a
    /// login), or with `SQLITE_BUSY` while another writer holds the lock:
    /// SQLite does not wait in either case, since the transaction already
    /// holds a read snapshot. PostgreSQL gets a plain `BEGIN`.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

/// Whether a connection (of a pool or a transaction) talks to SQLite.
pub fn is_sqlite(conn: &sqlx::AnyConnection) -> bool {
    conn.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME
}

/// The statement in the form the backend binds fastest.
///
/// SQLite keeps `$N` parameters in a linear list that it scans at prepare and
/// at every `sqlite3_bind_parameter_name` (sqlx asks it for each argument), so a
/// statement with n `$N` parameters costs O(n²): a third of the ingest time with
/// 1,800-parameter upserts in a profile. Anonymous `?` cost O(1). For SQLite this
/// rewrites `$1, $2, …, $k` to `?` when every `$N` appears exactly once and in
/// that order (so the arguments bind in the same order either way); any other
/// statement, and every PostgreSQL statement, is returned as it is. The SQL this
/// is used on is generated by flumon and holds no `$` inside string literals.
pub fn positional(sqlite: bool, sql: String) -> String {
    if !sqlite || !in_order(&sql) {
        return sql;
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// Every `$N` of `sql` is the next number from 1.
fn in_order(sql: &str) -> bool {
    let mut want: u64 = 1;
    let mut rest = sql;
    while let Some(i) = rest.find('$') {
        let after = rest.get(i + 1..).unwrap_or("");
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        match after.get(..digits).and_then(|d| d.parse::<u64>().ok()) {
            Some(n) if n == want => want += 1,
            _ => return false,
        }
        rest = after.get(digits..).unwrap_or("");
    }
    true
}

#[cfg(test)]
mod positional_tests {
    use super::positional;

    #[test]
    fn in_order_parameters_become_anonymous_for_sqlite_only() {
        let sql = "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)".to_string();
        assert_eq!(positional(true, sql.clone()), "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)");
        assert_eq!(positional(false, sql.clone()), sql);
        let many = (1..=12).map(|i| format!("${i}")).collect::<Vec<_>>().join(",");
        assert_eq!(positional(true, many), ["?"; 12].join(","));
    }

    #[test]
    fn reused_or_out_of_order_parameters_are_left_alone() {
        for sql in ["SELECT $1 WHERE a = $1", "SELECT $2, $1", "SELECT $1, $3", "SELECT '$' || $1", "SELECT $0"] {
            assert_eq!(positional(true, sql.to_string()), sql, "{sql}");
        }
        assert_eq!(positional(true, "SELECT 1".to_string()), "SELECT 1");
    }
}
