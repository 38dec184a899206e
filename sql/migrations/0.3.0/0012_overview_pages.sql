-- The dashboard reads the fleet a page at a time: service_overview() takes a
-- page's bounds (its definition is in 55_dashboard.sql), so the one without
-- arguments goes.
-- depends: 0011_alert_queue

SET LOCAL search_path = pg_catalog, pg_temp;

DROP FUNCTION IF EXISTS pystatus.service_overview();
