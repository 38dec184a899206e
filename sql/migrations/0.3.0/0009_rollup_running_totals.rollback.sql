-- Undo 0009_rollup_running_totals: the hourly rollups without running totals, and
-- the uptime windows without the dashboard's strips.

SET LOCAL search_path = pg_catalog, pg_temp;

ALTER TABLE pystatus.rollup_hourly
    DROP COLUMN up_us_before, DROP COLUMN down_us_before, DROP COLUMN maintenance_us_before;
-- Its definition names the column (an SQL-standard body): the version rolled
-- back to applies its own.
DROP FUNCTION IF EXISTS pystatus._refresh_uptime_windows();
ALTER TABLE pystatus.uptime_windows DROP COLUMN hourly_uptime;
