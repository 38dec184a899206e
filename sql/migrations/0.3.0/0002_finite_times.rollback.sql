SET LOCAL search_path = pg_catalog, pg_temp;

ALTER TABLE public.system_status DROP CONSTRAINT system_status_last_heartbeat_finite;
