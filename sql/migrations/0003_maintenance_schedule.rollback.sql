-- Undo 0003: unschedule the job when pg_cron lives here. A job registered in
-- another database must be removed there: `pystatus schedule --cron-dsn ... --remove`.

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        PERFORM cron.unschedule(jobid) FROM cron.job
        WHERE jobname = (pystatus.maintenance_job()).job_name;
    END IF;
END;
$$;

DROP FUNCTION pystatus.setup_report();
DROP FUNCTION pystatus.schedule_maintenance();
DROP FUNCTION pystatus.maintenance_scheduler();
DROP FUNCTION pystatus.maintenance_job();
