-- flumon-intranet schema, version 3: rollups per region level, so that a
-- national, provincial, city or county query reads one row per (day, metric,
-- dim) instead of every hospital's. Keys: '000000' (全国, every hospital),
-- the province (XX0000), the city (XXXX00) and the county of the hospital's
-- registered region. Metric 'oe_num' holds Σ oe_case over the hospital-days
-- that have a §3.8 record (the numerator of the outpatient/emergency ratio).
CREATE TABLE rollup_region (
    region TEXT NOT NULL,
    day BIGINT NOT NULL,
    metric TEXT NOT NULL,
    dim TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (region, day, metric, dim)
);

-- The figures already ingested.
CREATE TABLE rollup_oe AS
    SELECT r.org AS org, r.day AS day, 'oe_num' AS metric, '' AS dim, r.value AS value
    FROM rollup r JOIN rollup v ON v.org = r.org AND v.day = r.day AND v.metric = 'visits_day' AND v.dim = ''
    WHERE r.metric = 'oe_case' AND r.dim = '' AND v.value > 0;

INSERT INTO rollup_region (region, day, metric, dim, value)
    SELECT '000000', u.day, u.metric, u.dim, SUM(u.value) FROM (
        SELECT day, metric, dim, value FROM rollup UNION ALL SELECT day, metric, dim, value FROM rollup_oe
    ) u GROUP BY u.day, u.metric, u.dim HAVING SUM(u.value) <> 0;

-- Each hospital's chain of keys below 全国 (a set: a region given at city level is counted once).
CREATE TABLE region_chain AS
    SELECT code, region AS key FROM hospitals
    UNION SELECT code, SUBSTR(region, 1, 4) || '00' FROM hospitals
    UNION SELECT code, SUBSTR(region, 1, 2) || '0000' FROM hospitals;

INSERT INTO rollup_region (region, day, metric, dim, value)
    SELECT c.key, u.day, u.metric, u.dim, SUM(u.value) FROM (
        SELECT org, day, metric, dim, value FROM rollup UNION ALL SELECT org, day, metric, dim, value FROM rollup_oe
    ) u JOIN region_chain c ON c.code = u.org AND c.key <> '000000'
    GROUP BY c.key, u.day, u.metric, u.dim HAVING SUM(u.value) <> 0;

DROP TABLE region_chain;
DROP TABLE rollup_oe;
