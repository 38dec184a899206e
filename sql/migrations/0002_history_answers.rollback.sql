-- Undo 0002: the answers, rollups and the every-minute job go; history stays.

-- While this script runs, names resolve in pg_catalog first and objects of other
-- schemas only when qualified (transaction-local: it ends with the script).
SET LOCAL search_path = pg_catalog, pg_temp;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        EXECUTE 'SELECT count(cron.unschedule(jobid)) FROM cron.job WHERE jobname = ANY ($1)'
            USING ARRAY['pystatus-sweep:' || current_database(), 'pystatus-rollups:' || current_database()];
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION pystatus.maintenance_jobs()
RETURNS TABLE (job_name text, schedule text, command text, database text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'pystatus-maintain:' || current_database(), '7 * * * *',
           'SELECT pystatus.maintain()', current_database()::text;
$$;

DROP FUNCTION pystatus.task_durations(text, timestamptz, timestamptz);
DROP FUNCTION pystatus.trend(text, interval, interval, double precision);
DROP FUNCTION pystatus.uptime_month(text, date, text);
DROP FUNCTION pystatus.uptime_raw(text, timestamptz, timestamptz);
DROP FUNCTION pystatus.uptime(text, timestamptz, timestamptz);
DROP FUNCTION pystatus.compute_uptime(text, timestamptz, timestamptz, boolean);
DROP TYPE pystatus.uptime_report;
DROP FUNCTION pystatus.set_rollup_retention(interval);
DROP FUNCTION pystatus.refresh_rollups();
DROP FUNCTION pystatus.roll_up(text, timestamptz, timestamptz);
DROP FUNCTION pystatus.rollup_buckets(text, timestamptz, timestamptz, interval);
DROP TRIGGER system_status_history_late_rows ON public.system_status_history;
DROP FUNCTION pystatus.mark_rollups_dirty();
DROP TABLE pystatus.rollup_dirty;
DROP TABLE pystatus.rollup_state;
DROP TABLE pystatus.rollup_daily;
DROP TABLE pystatus.rollup_hourly;
DROP FUNCTION pystatus.incidents(text, timestamptz, timestamptz);
DROP FUNCTION pystatus.transitions(text, timestamptz, timestamptz);
DROP FUNCTION pystatus.segments(text, timestamptz, timestamptz);
DROP FUNCTION pystatus.sweep();
DROP VIEW pystatus.live_status;
DROP FUNCTION pystatus.microseconds(interval);
DROP FUNCTION pystatus.status_category(text);
DROP FUNCTION pystatus.goes_stale(text);
DROP FUNCTION pystatus.set_expectations(text, interval, interval);
DROP TABLE pystatus.service_expectations;
