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

ALTER FUNCTION pystatus.heartbeat(text, text, text, double precision) SECURITY INVOKER;
ALTER FUNCTION pystatus.heartbeat_many(text[], text[], text[], double precision[]) SECURITY INVOKER;

-- The copy trigger as 0001 makes it: without the allowance check.
CREATE OR REPLACE FUNCTION pystatus.copy_status_to_history()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    -- The staleness sweeper marks a silent service stale without a new
    -- heartbeat, and writes that history row itself, dated at the deadline.
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND NEW.status OPERATOR(pg_catalog.=) 'stale'
       AND NEW.last_heartbeat OPERATOR(pg_catalog.=) OLD.last_heartbeat THEN
        RETURN NULL;
    END IF;
    INSERT INTO public.system_status_history
        (heartbeat_timestamp, service_name, status, current_task, latency_ms)
    VALUES (NEW.last_heartbeat, NEW.service_name, NEW.status, NEW.current_task, NEW.latency_ms);
    RETURN NULL;
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
DROP FUNCTION pystatus.may_report(text);
DROP TABLE pystatus.service_logins;
DROP FUNCTION pystatus.sync_login_restriction();
DROP FUNCTION pystatus.logins_restricted();

-- As before 0006: functions callable by every role that may use the schema.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pystatus TO PUBLIC;
REVOKE USAGE ON SCHEMA pystatus FROM PUBLIC;

-- Kept: the functions that call pg_partman as 0001 makes them (every name
-- qualified) and their helpers; they behave as they did before 0006. TRIGGER
-- rights that 0006 revoked on the status tables are not granted back.
