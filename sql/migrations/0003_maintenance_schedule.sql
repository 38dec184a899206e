-- pg_cron runs pystatus.maintain() every hour. Three installations:
--   pg_cron in this database        this migration schedules the job;
--   pg_cron in another database     (cron.database_name, usually 'postgres'):
--                                   `pystatus schedule --cron-dsn ...` registers
--                                   it there with cron.schedule_in_database;
--   no pg_cron                      `pystatus maintain` from any scheduler.
-- depends: 0002_partitions

CREATE FUNCTION pystatus.maintenance_job(
    OUT job_name text, OUT schedule text, OUT command text, OUT database text)
LANGUAGE sql STABLE
AS $$
    SELECT 'pystatus-maintain:' || current_database(), '7 * * * *',
           'SELECT pystatus.maintain()', current_database()::text;
$$;
COMMENT ON FUNCTION pystatus.maintenance_job() IS
    'The pg_cron job that maintains this database''s history partitions: name, schedule '
    '(hourly), command and the database it runs in.';

CREATE FUNCTION pystatus.maintenance_scheduler()
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron')
            THEN 'pg_cron in this database'
        WHEN current_setting('cron.database_name', true) IS NOT NULL
            THEN 'pg_cron in database ' || current_setting('cron.database_name', true)
        ELSE 'none'
    END;
$$;
COMMENT ON FUNCTION pystatus.maintenance_scheduler() IS
    'Where maintenance can be scheduled from: pg_cron in this database, pg_cron in another '
    'database (cron.database_name), or none (run `pystatus maintain` from another scheduler).';

CREATE FUNCTION pystatus.schedule_maintenance()
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_job record := pystatus.maintenance_job();
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron')
       AND current_setting('cron.database_name', true) = current_database() THEN
        BEGIN
            CREATE EXTENSION pg_cron;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_cron is preloaded for this database but this role cannot create it: %', SQLERRM;
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN false;
    END IF;
    -- cron.schedule with a job name updates the job of that name: re-running is harmless.
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' USING v_job.job_name, v_job.schedule, v_job.command;
    RETURN true;
END;
$$;
COMMENT ON FUNCTION pystatus.schedule_maintenance() IS
    'Schedules pystatus.maintain() with pg_cron when pg_cron lives in this database (creating '
    'the extension if it is preloaded for this database); false when it cannot be done from here.';

DO $$ BEGIN PERFORM pystatus.schedule_maintenance(); END $$;

CREATE FUNCTION pystatus.setup_report(OUT item text, OUT value text, OUT todo text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_job record := pystatus.maintenance_job();
    v_scheduler text := pystatus.maintenance_scheduler();
    v_scheduled boolean := false;
    v_default_rows bigint := pystatus.history_default_rows();
BEGIN
    item := 'pg_partman';
    value := (SELECT extversion FROM pg_extension WHERE extname = 'pg_partman')
             || ' in schema ' || pystatus.partman_schema();
    todo := NULL;
    RETURN NEXT;

    item := 'history partitions';
    SELECT count(*) || ' covering ' || min(starts) || ' to ' || max(ends) INTO value
    FROM pystatus.history_partitions WHERE NOT is_default;
    RETURN NEXT;

    item := 'retention';
    value := coalesce(pystatus.history_retention()::text, 'none (history kept forever)');
    RETURN NEXT;

    item := 'rows in default partition';
    value := v_default_rows::text;
    todo := CASE WHEN v_default_rows > 0 THEN 'run: SELECT pystatus.move_default_rows()' END;
    RETURN NEXT;

    item := 'maintenance scheduler';
    value := v_scheduler;
    IF v_scheduler = 'pg_cron in this database' THEN
        EXECUTE 'SELECT EXISTS (SELECT FROM cron.job WHERE jobname = $1)' INTO v_scheduled USING v_job.job_name;
        value := value || CASE WHEN v_scheduled THEN ': job ' || quote_literal(v_job.job_name) || ' runs '
                                                    || quote_literal(v_job.schedule) ELSE ': no job' END;
        todo := CASE WHEN NOT v_scheduled THEN 'run: pystatus schedule (or apply migrations again)' END;
    ELSIF v_scheduler LIKE 'pg_cron in database %' THEN
        todo := format('register the job there: pystatus schedule --cron-dsn "dbname=%s ..." '
                       '(runs %s at %s)', current_setting('cron.database_name'), v_job.command, v_job.schedule);
    ELSE
        todo := format('no pg_cron: run `pystatus maintain` (%s) from another scheduler, hourly',
                       v_job.command);
    END IF;
    RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION pystatus.setup_report() IS
    'The installation at a glance (pg_partman, partitions, retention, default partition, '
    'maintenance scheduling) with, in todo, what is left for the DBA to do.';
