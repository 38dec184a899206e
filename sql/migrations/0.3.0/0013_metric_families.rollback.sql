-- Undo 0013_metric_families: the version rolled back to defines metrics() with
-- its quantile column; this one goes first (CREATE OR REPLACE cannot change
-- the columns).

SET LOCAL search_path = pg_catalog, pg_temp;

DROP FUNCTION IF EXISTS pystatus.metrics();
