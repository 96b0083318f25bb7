-- flumon-intranet schema, version 4: a unit's contribution to the rollups in
-- one row (JSON list of [day, metric, dim, value]) instead of one row per
-- cell: about 25 rows fewer per case to write, read and store. Rows of the
-- old table are packed by Db::open (db.rs) once, after this migration.
CREATE TABLE unit_contrib_packed (
    org TEXT NOT NULL,
    unit TEXT NOT NULL,
    contrib TEXT NOT NULL,
    PRIMARY KEY (org, unit)
);
