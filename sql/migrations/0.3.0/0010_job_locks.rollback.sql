-- Undo 0010_job_locks: the version rolled back to serializes with advisory
-- locks and has no limits; its definitions replace the functions that read these.

SET LOCAL search_path = pg_catalog, pg_temp;

DROP FUNCTION IF EXISTS pystatus.set_limits(integer, integer, integer);
DROP TABLE pystatus.limits;
DROP TABLE pystatus.job_locks;
