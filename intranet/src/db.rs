//! The database: sqlx's `Any` driver over SQLite (the embedded default, a
//! file in WAL mode) or PostgreSQL, chosen by `database_url`, with the
//! embedded migrations run at open.
//!
//! ```text
//!  database_url ─ sqlite://FILE ─▶ WAL, synchronous = FULL, busy timeout
//!               └ postgres://…  ─▶ pool
//!  Db::open ─▶ migrations/*.sql (one schema text both backends accept) ─▶ old unit_contrib rows packed
//!          ─▶ regions loaded
//! ```

use std::borrow::Cow;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Executor, SqlSafeStr};

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
                            conn.execute("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;").await?;
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
}
