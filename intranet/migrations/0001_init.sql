-- flumon-intranet schema, version 1. Written in the subset of SQL that SQLite
-- and PostgreSQL share: BIGINT, TEXT, composite primary keys, no serial ids.
-- Days are days since 1970-01-01, times seconds since 1970-01-01T00:00:00
-- (both China Standard Time, as the records carry them).

-- Ingested batches: idempotency (ARCHITECTURE invariant 7).
CREATE TABLE batches (
    node TEXT NOT NULL,
    seq BIGINT NOT NULL,
    digest TEXT NOT NULL,
    file_name TEXT NOT NULL,
    entries BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    ingested_at BIGINT NOT NULL,
    PRIMARY KEY (node, seq)
);

-- Hospital registry, as the DMZ sends it.
CREATE TABLE hospitals (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    level BIGINT NOT NULL,
    region TEXT NOT NULL,
    approved BIGINT NOT NULL,
    active BIGINT NOT NULL
);
CREATE INDEX hospitals_region ON hospitals (region);

-- Every record by its natural key (ZZJGDM, type, JLID pseudonym): the version
-- with the latest (GXSJ, DMZ sequence); deleted = 1 is a tombstone (body NULL).
CREATE TABLE records (
    org TEXT NOT NULL,
    ty TEXT NOT NULL,
    rec_key TEXT NOT NULL,
    gxsj BIGINT NOT NULL,
    dmz_seq BIGINT NOT NULL,
    deleted BIGINT NOT NULL,
    first_dmz_time BIGINT NOT NULL,
    unit TEXT NOT NULL,
    body TEXT,
    PRIMARY KEY (org, ty, rec_key)
);
CREATE INDEX records_unit ON records (org, unit);

-- Receipt summaries (reporting quality).
CREATE TABLE receipts (
    receipt_id TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    ty TEXT NOT NULL,
    time BIGINT NOT NULL,
    received BIGINT NOT NULL,
    accepted BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    errors TEXT NOT NULL
);
CREATE INDEX receipts_org_time ON receipts (org, time);

-- Death-scan metadata (the scans themselves never cross).
CREATE TABLE scans (
    org TEXT NOT NULL,
    case_key TEXT NOT NULL,
    wjxh BIGINT NOT NULL,
    sm3 TEXT NOT NULL,
    wjzs BIGINT NOT NULL,
    nrlb BIGINT NOT NULL,
    pages BIGINT,
    bytes BIGINT NOT NULL,
    received BIGINT NOT NULL,
    PRIMARY KEY (org, case_key, wjxh, sm3)
);

-- Heads of the DMZ's audit journal, for reconcile.
CREATE TABLE dmz_heads (
    node TEXT NOT NULL,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    time BIGINT NOT NULL,
    PRIMARY KEY (node, seq)
);

-- What each unit (a case, a hospital-day of visits, …) adds to the rollups,
-- so a change replaces exactly its old contribution.
CREATE TABLE unit_contrib (
    org TEXT NOT NULL,
    unit TEXT NOT NULL,
    day BIGINT NOT NULL,
    metric TEXT NOT NULL,
    dim TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (org, unit, day, metric, dim)
);

-- Rollups per hospital, day, metric and breakdown: every dashboard query reads these.
CREATE TABLE rollup (
    org TEXT NOT NULL,
    day BIGINT NOT NULL,
    metric TEXT NOT NULL,
    dim TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (org, day, metric, dim)
);
CREATE INDEX rollup_metric_day ON rollup (metric, day);

-- GB/T 2260 names (loaded at start from the embedded data set).
CREATE TABLE regions (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    level BIGINT NOT NULL,
    parent TEXT
);

-- Accounts (LEVEL3: argon2id + TOTP, lockout, password history).
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    scope TEXT,
    password_hash TEXT,
    totp_secret TEXT,
    activation_hash TEXT,
    failed BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    password_changed BIGINT NOT NULL,
    history TEXT NOT NULL,
    disabled BIGINT NOT NULL,
    created BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    created BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
