-- A scrape's shapes as Prometheus wants them: a service's status in a 0/1
-- family of its own and the latency as two gauges, so metrics() has no
-- quantile column any more (its definition is in 85_metrics.sql).
-- depends: 0012_overview_pages

SET LOCAL search_path = pg_catalog, pg_temp;

DROP FUNCTION IF EXISTS pystatus.metrics();
