-- flumon-intranet schema, version 5: the latest stock report of every
-- hospital and drug (drug reserve page) from a small partial index instead of
-- every 'stock_day' rollup row through rollup_metric_day and the table: 61 ms
-- instead of 370 ms at 10 million cases (docs/PERFORMANCE.md).
CREATE INDEX rollup_stock_latest ON rollup (org, dim, day) WHERE metric = 'stock_day';
