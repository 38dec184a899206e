-- Undo 0006 in this database only. The roles stay: they belong to the cluster
-- and another database may still grant them; a DBA drops them when no database
-- uses them (DROP ROLE refuses while any grant is left).

-- While this script runs, names resolve in pg_catalog first and objects of other
-- schemas only when qualified (transaction-local: it ends with the script).
SET LOCAL search_path = pg_catalog, pg_temp;

DROP FUNCTION pystatus.setup_report();
ALTER FUNCTION pystatus.setup_report_storage_and_jobs() RENAME TO setup_report;
COMMENT ON FUNCTION pystatus.setup_report() IS
    'The installation at a glance (pg_partman, partitions, retention, default partition, '
    'maintenance scheduling) with, in todo, what is left for the DBA to do.';

DROP FUNCTION pystatus.check();
DROP FUNCTION pystatus.check_roles();
ALTER FUNCTION pystatus.check_storage_and_jobs() RENAME TO "check";
COMMENT ON FUNCTION pystatus.check() IS
    'The installation''s health: pg_partman, partitions premade ahead, default partition empty, '
    'retention, rollups and sweeper keeping up, pg_cron jobs scheduled and their last runs. '
    'ok is false for each problem, with what to do in detail.';

DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['pystatus_writer', 'pystatus_reader'] LOOP
        CONTINUE WHEN to_regrole(v_role) IS NULL;
        EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pystatus FROM %I', v_role);
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA pystatus FROM %I', v_role);
        EXECUTE format('REVOKE ALL ON public.system_status, public.system_status_history FROM %I', v_role);
        EXECUTE format('REVOKE ALL ON SCHEMA pystatus FROM %I', v_role);
    END LOOP;
END;
$$;

ALTER FUNCTION pystatus.history(text, timestamptz, timestamptz) SECURITY INVOKER;
ALTER FUNCTION pystatus.transitions(text, timestamptz, timestamptz) SECURITY INVOKER;
ALTER FUNCTION pystatus.incidents(text, timestamptz, timestamptz) SECURITY INVOKER;
ALTER FUNCTION pystatus.uptime(text, timestamptz, timestamptz) SECURITY INVOKER;
ALTER FUNCTION pystatus.uptime_month(text, date, text) SECURITY INVOKER;
ALTER FUNCTION pystatus.trend(text, interval, interval, double precision) SECURITY INVOKER;
ALTER FUNCTION pystatus.task_durations(text, timestamptz, timestamptz) SECURITY INVOKER;
ALTER FUNCTION pystatus.daily_uptime(text, integer) SECURITY INVOKER;
ALTER FUNCTION pystatus.latency_hourly(text, timestamptz, timestamptz) SECURITY INVOKER;
ALTER FUNCTION pystatus.maintenance_jobs() SECURITY INVOKER;

-- The heartbeat functions as 0001 and 0004 made them: SECURITY INVOKER again, as
-- CREATE OR REPLACE sets every attribute it is not given to its default.
CREATE OR REPLACE FUNCTION pystatus.heartbeat(
    service_name text,
    status text DEFAULT 'ok',
    current_task text DEFAULT NULL,
    latency_ms double precision DEFAULT NULL)
RETURNS timestamptz
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_recorded_at timestamptz;
BEGIN
    IF NOT pystatus.is_valid_heartbeat(heartbeat.service_name, heartbeat.status, heartbeat.current_task,
                                       heartbeat.latency_ms) THEN
        PERFORM pystatus.check_heartbeat(heartbeat.service_name, heartbeat.status, heartbeat.current_task,
                                         heartbeat.latency_ms);
    END IF;
    -- clock_timestamp() in SET is read after the row lock is taken, so a
    -- service's heartbeats are recorded in the order they were applied.
    INSERT INTO public.system_status AS current
        (service_name, status, current_task, latency_ms, last_heartbeat, updated_at)
    VALUES (heartbeat.service_name, heartbeat.status, heartbeat.current_task, heartbeat.latency_ms,
            clock_timestamp(), clock_timestamp())
    ON CONFLICT (service_name) DO UPDATE
        SET status = EXCLUDED.status,
            current_task = EXCLUDED.current_task,
            latency_ms = EXCLUDED.latency_ms,
            last_heartbeat = clock_timestamp(),
            updated_at = clock_timestamp()
    RETURNING current.last_heartbeat INTO v_recorded_at;
    RETURN v_recorded_at;
END;
$$;

CREATE OR REPLACE FUNCTION pystatus.heartbeat_many(
    service_names text[],
    statuses text[],
    current_tasks text[] DEFAULT NULL,
    latencies_ms double precision[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count integer := coalesce(cardinality(service_names), 0);
    v_recorded integer;
    v_bad bigint;
BEGIN
    IF cardinality(statuses) IS DISTINCT FROM v_count
       OR (current_tasks IS NOT NULL AND cardinality(current_tasks) <> v_count)
       OR (latencies_ms IS NOT NULL AND cardinality(latencies_ms) <> v_count) THEN
        RAISE EXCEPTION 'invalid batch: % service names but % statuses, % tasks, % latencies',
            v_count, cardinality(statuses), cardinality(current_tasks), cardinality(latencies_ms)
            USING ERRCODE = 'PS005', HINT = 'The arrays go in step: one element per heartbeat.';
    END IF;
    -- One set-based test; the precise error only for the first bad heartbeat.
    SELECT b.position INTO v_bad
    FROM unnest(service_names, statuses, current_tasks, latencies_ms)
         WITH ORDINALITY AS b(service_name, status, current_task, latency_ms, position)
    WHERE NOT pystatus.is_valid_heartbeat(b.service_name, b.status, b.current_task, b.latency_ms)
    ORDER BY b.position LIMIT 1;
    IF v_bad IS NOT NULL THEN
        BEGIN
            PERFORM pystatus.check_heartbeat(service_names[v_bad], statuses[v_bad],
                                             current_tasks[v_bad], latencies_ms[v_bad]);
        EXCEPTION WHEN SQLSTATE 'PS001' OR SQLSTATE 'PS002' OR SQLSTATE 'PS003' OR SQLSTATE 'PS006' THEN
            RAISE EXCEPTION 'heartbeat % of %: %', v_bad, v_count, SQLERRM USING ERRCODE = SQLSTATE;
        END;
    END IF;
    -- One upsert for the batch; a service named twice keeps its last heartbeat
    -- (one statement cannot update a row twice).
    INSERT INTO public.system_status AS current
        (service_name, status, current_task, latency_ms, last_heartbeat, updated_at)
    SELECT DISTINCT ON (b.service_name) b.service_name, b.status, b.current_task, b.latency_ms,
           clock_timestamp(), clock_timestamp()
    FROM unnest(service_names, statuses,
                coalesce(current_tasks, array_fill(NULL::text, ARRAY[v_count])),
                coalesce(latencies_ms, array_fill(NULL::double precision, ARRAY[v_count])))
         WITH ORDINALITY AS b(service_name, status, current_task, latency_ms, position)
    ORDER BY b.service_name, b.position DESC
    ON CONFLICT (service_name) DO UPDATE
        SET status = EXCLUDED.status,
            current_task = EXCLUDED.current_task,
            latency_ms = EXCLUDED.latency_ms,
            last_heartbeat = EXCLUDED.last_heartbeat,
            updated_at = EXCLUDED.updated_at;
    GET DIAGNOSTICS v_recorded = ROW_COUNT;
    RETURN v_recorded;
END;
$$;

COMMENT ON FUNCTION pystatus.heartbeat(text, text, text, double precision) IS
    'Records a heartbeat at the database server''s clock: upserts system_status (the trigger '
    'copies it to history) and returns the recorded time. latency_ms is an optional measure '
    'for trends. Bad input raises PS001-PS003, PS006.';
COMMENT ON FUNCTION pystatus.heartbeat_many(text[], text[], text[], double precision[]) IS
    'Records many heartbeats in one call (arrays in step, one element per heartbeat; tasks and '
    'latencies optional). All or nothing: a bad element raises naming its position. Returns the '
    'number of services recorded.';

DROP FUNCTION pystatus.disallow_service(name, text);
DROP FUNCTION pystatus.allow_service(name, text);
DROP FUNCTION pystatus.may_heartbeat(name, text);
DROP TABLE pystatus.service_logins;
DROP FUNCTION pystatus.sync_login_restriction();
DROP FUNCTION pystatus.logins_restricted();

-- As before 0006: functions callable by every role that may use the schema.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pystatus TO PUBLIC;

-- Kept: the copy trigger and the functions that call pg_partman as 0001 makes
-- them (every name qualified) and their helpers; they behave as they did before 0006. TRIGGER
-- rights that 0006 revoked on the status tables are not granted back.
