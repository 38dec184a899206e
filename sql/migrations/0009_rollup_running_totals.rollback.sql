-- Undo 0009_rollup_running_totals: the hourly rollups without running totals.

SET LOCAL search_path = pg_catalog, pg_temp;

ALTER TABLE pystatus.rollup_hourly
    DROP COLUMN up_us_before, DROP COLUMN down_us_before, DROP COLUMN maintenance_us_before;
