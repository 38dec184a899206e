-- Undo 0008_history_time_index: history indexed by service and hour only.

SET LOCAL search_path = pg_catalog, pg_temp;

DROP INDEX public.system_status_history_time;
