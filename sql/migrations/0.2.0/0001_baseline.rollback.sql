-- Undo pystatus 0.2.0: the whole installation. History is dropped;
-- public.system_status and its rows are kept, back in the seed's shape,
-- because dashboards may still read it. The roles stay: they belong to the
-- cluster, and other databases may grant them. Released: never edit this file.

SET LOCAL search_path = pg_catalog, pg_temp;

-- The pg_cron jobs (named pystatus-<job>:<database>), when pg_cron lives here.
-- Jobs registered in another database must be removed there:
-- `pystatus schedule --cron-dsn ... --remove`.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        EXECUTE $q$
            SELECT count(cron.unschedule(jobid)) FROM cron.job
            WHERE database = current_database() AND jobname ~ '^pystatus-[a-z]+:'
              AND substr(jobname, strpos(jobname, ':') + 1) = current_database()$q$;
    END IF;
END;
$$;

-- pg_partman forgets system_status_history (the table and its partitions go
-- below). The extension itself stays: other tables may use it.
DO $$
DECLARE
    v_schema name := (SELECT extnamespace::regnamespace::name FROM pg_extension WHERE extname = 'pg_partman');
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

-- Every function, view and table of the schema, with the triggers and the
-- constraints of the status tables that call them.
DROP SCHEMA pystatus CASCADE;

DROP TABLE public.system_status_history;

-- TIMESTAMP values are written back in pystatus.legacy_time_zone (default UTC).
DO $$
DECLARE
    v_zone text := coalesce(nullif(current_setting('pystatus.legacy_time_zone', true), ''), 'UTC');
BEGIN
    EXECUTE format($f$
        ALTER TABLE public.system_status
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
