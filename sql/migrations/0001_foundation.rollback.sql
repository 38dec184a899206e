-- Undo the foundation. History is dropped; public.system_status and its rows
-- are kept, back in the seed's shape, because dashboards may still read it.

------------------------------------------------------------------------------
-- 3. Maintenance schedule
------------------------------------------------------------------------------

-- Unschedule the jobs when pg_cron lives here. Jobs registered in another
-- database must be removed there: `pystatus schedule --cron-dsn ... --remove`.

-- While this script runs, names resolve in pg_catalog first and objects of other
-- schemas only when qualified (transaction-local: it ends with the script).
SET LOCAL search_path = pg_catalog, pg_temp;

DO $$ BEGIN PERFORM pystatus.unschedule_maintenance(); END $$;

DROP FUNCTION pystatus.setup_report();
DROP FUNCTION pystatus.schedule_maintenance();
DROP FUNCTION pystatus.unschedule_maintenance();
DROP FUNCTION pystatus.maintenance_scheduler();
DROP FUNCTION pystatus.maintenance_jobs();

------------------------------------------------------------------------------
-- 2. Partitions
------------------------------------------------------------------------------

-- pg_partman forgets system_status_history (the table and its partitions go
-- below). The extension itself stays: other tables may use it.

DO $$
DECLARE
    v_schema name := pystatus.partman_schema();
    v_template text;
BEGIN
    EXECUTE format('SELECT template_table FROM %I.part_config WHERE parent_table = $1', v_schema)
        INTO v_template USING 'public.system_status_history';
    EXECUTE format('DELETE FROM %I.part_config WHERE parent_table = $1', v_schema)
        USING 'public.system_status_history';
    IF v_template IS NOT NULL THEN
        EXECUTE format('DROP TABLE IF EXISTS %s', v_template);
    END IF;
END;
$$;

DROP FUNCTION pystatus.record_heartbeat(text, text, text, timestamptz, double precision);
DROP FUNCTION pystatus.move_default_rows();
DROP FUNCTION pystatus.maintain();
DROP FUNCTION pystatus.create_history_partitions(timestamptz, timestamptz);
DROP FUNCTION pystatus.history_default_rows();
DROP FUNCTION pystatus.set_history_retention(interval);
DROP FUNCTION pystatus.history_retention();
DROP VIEW pystatus.history_partitions;
DROP FUNCTION pystatus.partman_schema();

------------------------------------------------------------------------------
-- 1. Current status and history
------------------------------------------------------------------------------

-- TIMESTAMP values are written back in pystatus.legacy_time_zone (default UTC).

DROP TRIGGER system_status_copy_to_history ON public.system_status;
DROP FUNCTION pystatus.history(text, timestamptz, timestamptz);
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
            DROP COLUMN latency_ms,
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
