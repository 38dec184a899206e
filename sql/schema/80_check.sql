-- The installation's own health: check() for monitoring (ok false, with the
-- remedy, for each problem) and setup_report() for the DBA after a migrate.
-- The roles' part, _check_roles(), is beside the roles in 90_roles.sql.

SET LOCAL search_path = pg_catalog, pg_temp;

-- Every client compares this with its own sources before it says anything
-- else when a query fails on a missing object: "run pystatus migrate", not
-- "column ... does not exist". Any login may ask, whatever its rights.
CREATE OR REPLACE FUNCTION pystatus.installed_version()
RETURNS TABLE (version text, sources_sha256 text, applied_at timestamptz)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.version, d.sources_sha256, d.applied_at
    FROM pystatus.definitions_applied AS d
    ORDER BY d.applied_at DESC
    LIMIT 1;
$$;
COMMENT ON FUNCTION pystatus.installed_version() IS
    'The pystatus version whose definitions are installed, the checksum of its sql/schema/ files '
    'and when `pystatus migrate` applied them (the newest row of definitions_applied).';

CREATE OR REPLACE FUNCTION pystatus._check_storage()
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
    v_overdue record;
    v_bad_names text;
    v_alerts record;
    v_held text;
BEGIN
    v_schema := pystatus._partman_schema();  -- raises PS010 when pg_partman is missing
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

    -- Maintenance defers drops while other transactions hold history; a day
    -- past due, that is a problem to see.
    SELECT c.relname, p.ends INTO v_overdue
    FROM pystatus.history_partitions AS p JOIN pg_class AS c ON c.oid = p.partition
    WHERE NOT p.is_default AND p.ends < now() - v_retention - interval '1 day'
    ORDER BY p.ends LIMIT 1;
    item := 'retention'; ok := v_retention IS NOT NULL AND v_overdue.relname IS NULL;
    detail := CASE WHEN v_retention IS NULL THEN 'none: history is kept forever'
                   WHEN v_overdue.relname IS NOT NULL
                   THEN format('%s, overdue: partition %s ended at %s, more than a day past it; maintenance '
                               'is failing, or deferring because other transactions hold system_status_history '
                               '(run pystatus maintain and read its result)', v_retention, v_overdue.relname,
                               v_overdue.ends)
                   ELSE v_retention::text END;
    RETURN NEXT;

    item := 'rollups'; ok := v_rolled >= date_bin('1 hour', now() - pystatus._rollup_delay(), pystatus._bucket_origin()) - interval '1 hour';
    detail := 'rolled up until ' || v_rolled || CASE WHEN ok THEN '' ELSE ': is the rollups job running?' END;
    RETURN NEXT;

    SELECT count(*) INTO v_unswept FROM pystatus.live_status
    WHERE effective_status = 'stale' AND reported_status <> 'stale' AND stale_after < now() - interval '5 minutes';
    item := 'sweeper'; ok := v_unswept = 0;
    detail := CASE WHEN ok THEN 'no silent service left unmarked'
                   ELSE v_unswept || ' silent services not marked stale for 5 minutes: is the sweep job running?' END;
    RETURN NEXT;

    -- A job whose lock has been held past its period is not running: its
    -- holder (a session of pystatus's owner, or of the alert worker's login
    -- inside a transaction left open) is named, so that it can be ended.
    SELECT string_agg(format('%s held by pid %s (login %s) since %s', h.job, h.holder_pid,
                             coalesce(h.holder_login::text, 'unknown'),
                             coalesce(h.held_since, h.last_run)), '; ' ORDER BY h.job)
    INTO v_held
    FROM pystatus.job_lock_holders() AS h
    WHERE h.holder_pid IS NOT NULL AND h.period IS NOT NULL
      AND coalesce(h.held_since, h.last_run) < now() - h.period;
    item := 'job locks'; ok := v_held IS NULL;
    detail := CASE WHEN ok THEN 'no job waiting on another run'
                   ELSE v_held || ': their runs are skipped meanwhile; end that session '
                        '(SELECT pg_terminate_backend(pid)) if it is stuck' END;
    RETURN NEXT;

    -- Names stored before the naming rule last changed are not re-checked by
    -- the table's constraint: a name with invisible characters can pass for another.
    SELECT string_agg(format('%L (%s)', service_name, pystatus.service_name_problem(service_name)), ', ')
    INTO v_bad_names
    FROM public.system_status WHERE NOT pystatus.is_valid_service_name(service_name);
    item := 'service names'; ok := v_bad_names IS NULL;
    detail := CASE WHEN ok THEN 'every name keeps the naming rule'
                   ELSE 'names that break the naming rule: ' || v_bad_names
                        || ': rename them (UPDATE system_status SET service_name = ...)' END;
    RETURN NEXT;

    -- Alerts, once a rule exists: a message still pending a minute after it
    -- was due means no worker is running (or its channel is failing).
    IF EXISTS (SELECT FROM pystatus.alert_rules) THEN
        SELECT count(*) FILTER (WHERE m.state = 'pending' AND m.created_at < now() - interval '1 minute'
                                  AND m.attempts = 0) AS waiting,
               count(*) FILTER (WHERE m.state = 'pending' AND m.attempts > 0) AS retrying,
               count(*) FILTER (WHERE m.state = 'failed' AND m.created_at > now() - interval '1 day') AS failed,
               (SELECT a.error FROM pystatus.alert_attempts AS a WHERE a.outcome = 'failed'
                ORDER BY a.started_at DESC LIMIT 1) AS last_error
        INTO v_alerts
        FROM pystatus.alert_messages AS m WHERE m.state <> 'sent';
        item := 'alerts'; ok := v_alerts.waiting = 0 AND v_alerts.retrying = 0 AND v_alerts.failed = 0;
        detail := CASE WHEN ok THEN 'every message delivered'
                       ELSE concat_ws('; ',
                           CASE WHEN v_alerts.waiting > 0 THEN v_alerts.waiting
                                || ' messages waiting for more than a minute: is `pystatus alerts run` running?' END,
                           CASE WHEN v_alerts.retrying > 0 THEN v_alerts.retrying || ' being retried' END,
                           CASE WHEN v_alerts.failed > 0 THEN v_alerts.failed || ' failed in the last day' END,
                           'last error: ' || v_alerts.last_error,
                           'see pystatus alerts log') END;
        RETURN NEXT;
    END IF;

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
                           ELSE 'last run ' || v_job.status
                                || coalesce(' at ' || v_job.end_time, '')
                                || coalesce(': ' || nullif(v_job.return_message, ''), '')
                                || CASE WHEN v_job.status = 'failed'
                                        THEN ' (see cron.job_run_details; pg_cron connects as the job''s '
                                             'user: that login needs a password in .pgpass or trust in '
                                             'pg_hba.conf for cron.host)' ELSE '' END END;
            RETURN NEXT;
        END LOOP;
    ELSE
        -- Not verified from here: `pystatus check` reads them where pg_cron lives.
        -- Unknown (NULL), not failing: a healthy install must not page anyone.
        item := 'jobs';
        ok := CASE WHEN pystatus.maintenance_scheduler() = 'none' THEN true END;
        detail := pystatus.maintenance_scheduler()
                  || CASE WHEN ok THEN ': run `pystatus maintain` every minute from another scheduler'
                          ELSE ': unknown, their runs are not visible from this database: pystatus check '
                               '--cron-dsn <pg_cron''s database> reads them there' END;
        RETURN NEXT;
    END IF;
END;
$$;
COMMENT ON FUNCTION pystatus._check_storage() IS
    'pystatus.check() without the roles: pg_partman, partitions premade ahead, default partition '
    'empty, retention, rollups and sweeper keeping up, alerts delivered, pg_cron jobs scheduled and '
    'their last runs.';

CREATE OR REPLACE FUNCTION pystatus.check()
RETURNS TABLE (item text, ok boolean, detail text)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT * FROM pystatus._check_storage();
    RETURN QUERY SELECT * FROM pystatus._check_roles();
END;
$$;
COMMENT ON FUNCTION pystatus.check() IS
    'The installation''s health: pg_partman, partitions premade ahead, default partition empty, '
    'retention, rollups and sweeper keeping up, pg_cron jobs scheduled and their last runs, roles. '
    'ok is false for each problem, with what to do in detail.';

CREATE OR REPLACE FUNCTION pystatus.setup_report(OUT item text, OUT value text, OUT todo text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_scheduler text := pystatus.maintenance_scheduler();
    v_jobs text := (SELECT string_agg(format('%s at %L', command, schedule), '; ')
                    FROM pystatus.maintenance_jobs());
    v_missing text;
    v_default_rows bigint := pystatus.history_default_rows();
BEGIN
    item := 'pg_partman';
    value := (SELECT extversion FROM pg_extension WHERE extname = 'pg_partman')
             || ' in schema ' || pystatus._partman_schema();
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
    todo := NULL;
    IF v_scheduler = 'pg_cron in this database' THEN
        EXECUTE 'SELECT string_agg(job_name, '', '') FROM pystatus.maintenance_jobs()
                 WHERE job_name NOT IN (SELECT jobname FROM cron.job)' INTO v_missing;
        value := value || ': ' || coalesce('missing ' || v_missing, 'jobs scheduled (' || v_jobs || ')');
        todo := CASE WHEN v_missing IS NOT NULL THEN 'run: pystatus schedule' END;
    ELSIF v_scheduler LIKE 'pg_cron in %database%' THEN
        todo := format('register the jobs there: pystatus schedule --cron-dsn "dbname=%s ..." (%s)',
                       coalesce((SELECT name FROM pystatus._cron_database()), '<pg_cron''s database>'), v_jobs);
    ELSE
        todo := format('no pg_cron: run `pystatus maintain` every minute from another scheduler (%s)',
                       v_jobs);
    END IF;
    RETURN NEXT;

    -- The roles, and whom to grant them to.
    RETURN QUERY
    SELECT r.item, r.detail,
           CASE WHEN NOT r.ok THEN r.detail
                -- The owner administers the roles (WITH ADMIN OPTION): it does not count.
                WHEN NOT EXISTS (SELECT FROM pg_auth_members
                                 WHERE roleid = to_regrole(substr(r.item, 6)) AND NOT admin_option)
                THEN format('grant %s to the logins of %s: GRANT %1$s TO <login>',
                            substr(r.item, 6),
                            CASE r.item WHEN 'role pystatus_writer' THEN 'services'
                                        WHEN 'role pystatus_alerter' THEN 'the alert worker, if you use alerts'
                                        ELSE 'dashboards and monitoring' END) END
    FROM pystatus._check_roles() AS r
    WHERE r.item LIKE 'role %';
END;
$$;
COMMENT ON FUNCTION pystatus.setup_report() IS
    'The installation at a glance (pg_partman, partitions, retention, default partition, '
    'maintenance scheduler, roles), with what is left for the DBA to do in todo.';
