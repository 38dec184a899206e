-- Undo 0012_overview_pages: the version rolled back to defines service_overview()
-- without arguments; the paged one and what only it needs go.

SET LOCAL search_path = pg_catalog, pg_temp;

DROP FUNCTION IF EXISTS pystatus.service_overview(integer, integer, boolean, text);
DROP FUNCTION IF EXISTS pystatus.fleet_counts();
DROP FUNCTION IF EXISTS pystatus.needs_attention(text);
