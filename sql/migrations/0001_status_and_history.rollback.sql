-- Undo 0001. History is dropped; public.system_status and its rows are kept,
-- back in the seed's shape (TIMESTAMP columns, read in pystatus.legacy_time_zone,
-- default UTC), because dashboards may still read it.

DROP TRIGGER system_status_copy_to_history ON public.system_status;
DROP TABLE public.system_status_history;

DO $$
DECLARE
    v_zone text := coalesce(nullif(current_setting('pystatus.legacy_time_zone', true), ''), 'UTC');
BEGIN
    EXECUTE format($f$
        ALTER TABLE public.system_status
            DROP CONSTRAINT system_status_service_name_valid,
            DROP CONSTRAINT system_status_status_valid,
            DROP CONSTRAINT system_status_current_task_size,
            RESET (fillfactor),
            ALTER COLUMN updated_at DROP NOT NULL,
            ALTER COLUMN last_heartbeat TYPE timestamp USING last_heartbeat AT TIME ZONE %1$L,
            ALTER COLUMN updated_at TYPE timestamp USING updated_at AT TIME ZONE %1$L
        $f$, v_zone);
END;
$$;

COMMENT ON TABLE public.system_status IS NULL;
COMMENT ON COLUMN public.system_status.status IS NULL;
COMMENT ON COLUMN public.system_status.current_task IS NULL;
COMMENT ON COLUMN public.system_status.last_heartbeat IS NULL;
COMMENT ON COLUMN public.system_status.updated_at IS NULL;

DROP SCHEMA pystatus CASCADE;
