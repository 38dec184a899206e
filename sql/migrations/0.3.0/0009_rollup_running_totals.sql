-- Running totals in the hourly rollups: a window's whole hours are read as two
-- rows a service (its first and last hour) instead of every hour and day
-- between, 52 rows a service for 30 days. The fleet's uptime reads 2,000 rows
-- at 1,000 services instead of 52,000. And the dashboard's 24-hour strips,
-- kept with the 1d uptime window (pystatus.service_overview() read them from
-- the hourly rollups at each call, nine tenths of its time).
-- depends: 0007_current_hour_spans
--
-- Computes the totals of the rollups already kept, in this transaction: it
-- rewrites pystatus.rollup_hourly (21 s for 785,000 rows, 30 days of 1,000
-- services, on 2 cores), and answers read from rollups wait for it meanwhile.
-- Heartbeats do not touch it.

SET LOCAL search_path = pg_catalog, pg_temp;

ALTER TABLE pystatus.rollup_hourly
    ADD COLUMN up_us_before bigint,
    ADD COLUMN down_us_before bigint,
    ADD COLUMN maintenance_us_before bigint;

UPDATE pystatus.rollup_hourly AS r
SET up_us_before = t.up_us_before, down_us_before = t.down_us_before,
    maintenance_us_before = t.maintenance_us_before
FROM (SELECT h.service_name, h.bucket,
             coalesce(sum(h.up_us) OVER earlier, 0) AS up_us_before,
             coalesce(sum(h.down_us) OVER earlier, 0) AS down_us_before,
             coalesce(sum(h.maintenance_us) OVER earlier, 0) AS maintenance_us_before
      FROM pystatus.rollup_hourly AS h
      WINDOW earlier AS (PARTITION BY h.service_name ORDER BY h.bucket
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) AS t
WHERE r.service_name = t.service_name AND r.bucket = t.bucket;

ALTER TABLE pystatus.rollup_hourly
    ALTER COLUMN up_us_before SET NOT NULL,
    ALTER COLUMN down_us_before SET NOT NULL,
    ALTER COLUMN maintenance_us_before SET NOT NULL;
COMMENT ON COLUMN pystatus.rollup_hourly.up_us_before IS
    'up_us of the service''s earlier rows, added up (down_us_before, maintenance_us_before alike): '
    'the hours [a, b) of a service add up to the last row''s before and own values less the first '
    'row''s before. Rows deleted past retention leave the later ones as they are.';

ALTER TABLE pystatus.uptime_windows ADD COLUMN hourly_uptime double precision[];
COMMENT ON COLUMN pystatus.uptime_windows.hourly_uptime IS
    'In the 1d row: the uptime of each of its 24 hours, oldest first (NULL where no data), the '
    'strip of pystatus.service_overview(); NULL in the others.';
