-- pystatus.check(): the installation's own health, for DBAs and for monitoring.
-- depends: 0004_heartbeat_many

-- While this script runs, names resolve in pg_catalog first and objects of other
-- schemas only when qualified (transaction-local: it ends with the script).
SET LOCAL search_path = pg_catalog, pg_temp;

CREATE FUNCTION pystatus.check()
RETURNS TABLE (item text, ok boolean, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name;
    v_interval interval;
    v_until timestamptz := (SELECT max(ends) FROM pystatus.history_partitions);
    v_default bigint := pystatus.history_default_rows();
    v_retention interval := pystatus.history_retention();
    v_rolled timestamptz := (SELECT rolled_until FROM pystatus.rollup_state);
    v_unswept bigint;
    v_job record;
BEGIN
    v_schema := pystatus.partman_schema();  -- raises PS010 when pg_partman is missing
    item := 'pg_partman'; ok := true;
    detail := (SELECT extversion FROM pg_extension WHERE extname = 'pg_partman') || ' in schema ' || v_schema;
    RETURN NEXT;

    EXECUTE format('SELECT partition_interval::interval FROM %I.part_config WHERE parent_table = $1', v_schema)
        INTO v_interval USING 'public.system_status_history';
    item := 'partitions ahead';
    ok := v_until >= now() + v_interval;
    detail := 'premade until ' || v_until || CASE WHEN ok THEN '' ELSE ': run pystatus maintain' END;
    RETURN NEXT;

    item := 'default partition'; ok := v_default = 0;
    detail := v_default || ' rows' || CASE WHEN ok THEN '' ELSE ': run SELECT pystatus.move_default_rows()' END;
    RETURN NEXT;

    item := 'retention'; ok := v_retention IS NOT NULL;
    detail := coalesce(v_retention::text, 'none: history is kept forever');
    RETURN NEXT;

    item := 'rollups'; ok := v_rolled >= date_bin('1 hour', now() - interval '5 minutes', timestamptz '2000-01-01 00:00:00+00') - interval '1 hour';
    detail := 'rolled up until ' || v_rolled || CASE WHEN ok THEN '' ELSE ': is the rollups job running?' END;
    RETURN NEXT;

    SELECT count(*) INTO v_unswept FROM pystatus.live_status
    WHERE effective_status = 'stale' AND reported_status <> 'stale' AND stale_after < now() - interval '5 minutes';
    item := 'sweeper'; ok := v_unswept = 0;
    detail := CASE WHEN ok THEN 'no silent service left unmarked'
                   ELSE v_unswept || ' silent services not marked stale for 5 minutes: is the sweep job running?' END;
    RETURN NEXT;

    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        FOR v_job IN EXECUTE $q$
            SELECT m.job_name, j.active, d.status, d.end_time, d.return_message
            FROM pystatus.maintenance_jobs() AS m
            LEFT JOIN cron.job AS j ON j.jobname = m.job_name
            LEFT JOIN LATERAL (SELECT r.status, r.end_time, r.return_message FROM cron.job_run_details AS r
                               WHERE r.jobid = j.jobid AND r.status IN ('succeeded', 'failed')
                               ORDER BY r.runid DESC LIMIT 1) AS d ON true
            ORDER BY m.job_name$q$
        LOOP
            item := 'job ' || v_job.job_name;
            ok := v_job.active IS TRUE AND coalesce(v_job.status, 'succeeded') = 'succeeded';
            detail := CASE WHEN v_job.active IS NULL THEN 'not scheduled: run pystatus schedule'
                           WHEN NOT v_job.active THEN 'scheduled but inactive'
                           WHEN v_job.status IS NULL THEN 'scheduled, not run yet'
                           ELSE 'last run ' || v_job.status || ' at ' || v_job.end_time
                                || coalesce(': ' || nullif(v_job.return_message, ''), '') END;
            RETURN NEXT;
        END LOOP;
    ELSE
        item := 'jobs'; ok := true;
        detail := pystatus.maintenance_scheduler()
                  || ': check them there (pystatus check --cron-dsn ...) or in your scheduler';
        RETURN NEXT;
    END IF;
END;
$$;
COMMENT ON FUNCTION pystatus.check() IS
    'The installation''s health: pg_partman, partitions premade ahead, default partition empty, '
    'retention, rollups and sweeper keeping up, pg_cron jobs scheduled and their last runs. '
    'ok is false for each problem, with what to do in detail.';
