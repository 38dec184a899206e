-- Undo 0003: the dashboard's read functions.
-- While this script runs, names resolve in pg_catalog first and objects of other
-- schemas only when qualified (transaction-local: it ends with the script).
SET LOCAL search_path = pg_catalog, pg_temp;

DROP FUNCTION pystatus.latency_hourly(text, timestamptz, timestamptz);
DROP FUNCTION pystatus.daily_uptime(text, integer);
