-- Scheduling: the pg_cron jobs that run maintenance, the sweeper and the
-- rollups. Three installations:
--   pg_cron in this database        `pystatus migrate` schedules the jobs;
--   pg_cron in another database     (cron.database_name, usually 'postgres'):
--                                   `pystatus schedule --cron-dsn ...` registers
--                                   them there with cron.schedule_in_database;
--   no pg_cron                      `pystatus maintain` from any scheduler.

SET LOCAL search_path = pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- One run of a job at a time: a row of pystatus.job_locks, which only
-- pystatus's owner may lock (an advisory lock any login could take first).
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus._try_job_lock(job text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE pystatus.job_locks AS j SET last_run = now()
    WHERE j.job = (SELECT l.job FROM pystatus.job_locks AS l WHERE l.job = _try_job_lock.job
                   FOR UPDATE SKIP LOCKED);
    RETURN FOUND;
END;
$$;
COMMENT ON FUNCTION pystatus._try_job_lock(text) IS
    'Takes the job''s lock for this transaction if no other run holds it (true), else false at '
    'once; records the run''s start in job_locks.last_run.';

CREATE OR REPLACE FUNCTION pystatus._wait_job_lock(job text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE pystatus.job_locks AS j SET last_run = now() WHERE j.job = _wait_job_lock.job;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no job %', quote_literal(job) USING ERRCODE = 'PS005';
    END IF;
END;
$$;
COMMENT ON FUNCTION pystatus._wait_job_lock(text) IS
    'Takes the job''s lock for this transaction, waiting for a run that holds it (bounded by the '
    'caller''s lock_timeout).';

CREATE OR REPLACE FUNCTION pystatus.job_lock_holders()
RETURNS TABLE (job text, period interval, last_run timestamptz, holder_pid integer, holder_login name,
               held_since timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- A row being changed carries its changer's transaction id in xmax until
    -- that transaction ends, and the session running it holds the lock on that
    -- id: pg_locks shows it to every role, where pg_stat_activity hides other
    -- logins' transactions (xact_start is NULL then).
    SELECT j.job, j.period, j.last_run, l.pid, a.usename, a.xact_start
    FROM pystatus.job_locks AS j
    LEFT JOIN pg_locks AS l
           ON l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
          AND l.transactionid = j.xmax
    LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
    ORDER BY j.job;
$$;
COMMENT ON FUNCTION pystatus.job_lock_holders() IS
    'Each job, how often it is due, when its newest committed run started, and the session that '
    'holds its lock now (pid, login, since its transaction began; NULL when free).';

-- Job names are pystatus-<job>:<database>: 0.2.0's rollback removes the jobs
-- of this form, so new jobs keep it.
CREATE OR REPLACE FUNCTION pystatus.maintenance_jobs()
RETURNS TABLE (job_name text, schedule text, command text, database text)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- Separate jobs, so that the sweeper's short transaction never waits for a rollup.
    VALUES ('pystatus-maintain:' || current_database(), '7 * * * *',
            'SELECT pystatus.maintain()', current_database()::text),
           ('pystatus-sweep:' || current_database(), '* * * * *',
            'SELECT pystatus.sweep()', current_database()::text),
           ('pystatus-rollups:' || current_database(), '* * * * *',
            'SELECT pystatus.refresh_rollups()', current_database()::text);
$$;
COMMENT ON FUNCTION pystatus.maintenance_jobs() IS
    'The pg_cron jobs that keep this database''s history in shape: name, schedule, command and '
    'the database each runs in.';

-- cron.database_name, where pg_cron lives, is readable only by superusers and
-- pg_read_all_settings, even with missing_ok: a non-superuser owner gets an
-- answer saying so, not an error.
CREATE OR REPLACE FUNCTION pystatus._cron_database(OUT name text, OUT readable boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    readable := true;
    name := current_setting('cron.database_name', true);  -- NULL: pg_cron is not loaded
EXCEPTION WHEN insufficient_privilege THEN
    readable := false;
END;
$$;
COMMENT ON FUNCTION pystatus._cron_database() IS
    'The database pg_cron lives in (cron.database_name; NULL when pg_cron is not loaded), and '
    'whether this role may read that setting.';

CREATE OR REPLACE FUNCTION pystatus.cron_database()
RETURNS text
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.name FROM pystatus._cron_database() AS c
    WHERE c.readable AND c.name IS DISTINCT FROM current_database()
      AND NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron');
$$;
COMMENT ON FUNCTION pystatus.cron_database() IS
    'The other database pg_cron lives in, where this database''s jobs are registered and run '
    '(NULL when pg_cron is here, absent, or its database cannot be read): where `pystatus check` '
    'looks for the jobs'' runs.';

CREATE OR REPLACE FUNCTION pystatus.maintenance_scheduler()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron')
            THEN 'pg_cron in this database'
        WHEN NOT c.readable
            THEN 'pg_cron in another database (which one, cron.database_name, only superusers and '
                 'pg_read_all_settings may read: GRANT pg_read_all_settings TO ' || quote_ident(current_user)
                 || ', or give --cron-dsn)'
        WHEN c.name IS NOT NULL
            THEN 'pg_cron in database ' || c.name
        ELSE 'none'
    END
    FROM pystatus._cron_database() AS c;
$$;
COMMENT ON FUNCTION pystatus.maintenance_scheduler() IS
    'Where maintenance can be scheduled from: pg_cron in this database, pg_cron in another '
    'database (cron.database_name), or none (run `pystatus maintain` from another scheduler).';

CREATE OR REPLACE FUNCTION pystatus.schedule_maintenance()
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron')
       AND (SELECT name FROM pystatus._cron_database()) = current_database() THEN
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
    EXECUTE 'SELECT count(cron.schedule(job_name, schedule, command)) FROM pystatus.maintenance_jobs()';
    RETURN true;
END;
$$;
COMMENT ON FUNCTION pystatus.schedule_maintenance() IS
    'Schedules pystatus.maintenance_jobs() with pg_cron when pg_cron lives in this database '
    '(creating the extension if it is preloaded for this database); false when it cannot be done from here.';

CREATE OR REPLACE FUNCTION pystatus.unschedule_maintenance()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_removed integer := 0;
BEGIN
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        EXECUTE 'SELECT count(cron.unschedule(jobid)) FROM cron.job
                 WHERE jobname IN (SELECT job_name FROM pystatus.maintenance_jobs())'
            INTO v_removed;
    END IF;
    RETURN v_removed;
END;
$$;
COMMENT ON FUNCTION pystatus.unschedule_maintenance() IS
    'Removes this database''s pystatus jobs from pg_cron when pg_cron lives here; returns how many.';

------------------------------------------------------------------------------
-- The sweeper: silence past a deadline written as stale
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus.sweep()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_marked integer;
BEGIN
    -- A hot standby is read-only: its primary does this work, and replication
    -- brings the result. pg_cron runs no job there; a call by hand skips.
    IF pg_is_in_recovery() THEN
        RETURN 0;
    END IF;
    -- One sweep at a time (pg_cron's and one by hand): the second marks nothing.
    IF NOT pystatus._try_job_lock('sweep') THEN
        RETURN 0;
    END IF;
    -- The freshness test is on the target row (s), which PostgreSQL re-checks
    -- if a heartbeat updates it concurrently: a service that just spoke is
    -- never marked. Rows another transaction holds (a service writing inside a
    -- long transaction) are skipped, not waited for: a waiting sweep would keep
    -- the rows it already marked locked, and their services' heartbeats waiting.
    -- The history row is dated at the deadline, but never before the oldest
    -- partition: a service adopted long dead would otherwise get a row that
    -- maintenance moves into a partition it creates and drops at once.
    WITH candidates AS (
        SELECT s.service_name
        FROM public.system_status AS s JOIN pystatus.live_status AS l ON l.service_name = s.service_name
        WHERE pystatus.goes_stale(s.status) AND s.last_heartbeat + l.expected_interval + l.grace < now()
        FOR UPDATE OF s SKIP LOCKED
    ), silent AS (
        UPDATE public.system_status AS s
        SET status = 'stale', updated_at = clock_timestamp()
        FROM candidates AS c, pystatus.live_status AS l
        WHERE s.service_name = c.service_name AND l.service_name = s.service_name
          AND pystatus.goes_stale(s.status)
          AND s.last_heartbeat + l.expected_interval + l.grace < now()
        RETURNING s.service_name, s.last_heartbeat + l.expected_interval + l.grace AS deadline
    ), written AS (
        INSERT INTO public.system_status_history (heartbeat_timestamp, created_at, service_name, status)
        SELECT greatest(deadline, (SELECT min(p.starts) FROM pystatus.history_partitions AS p
                                   WHERE NOT p.is_default)),
               clock_timestamp(), service_name, 'stale'
        FROM silent
        RETURNING 1
    )
    SELECT count(*) INTO v_marked FROM written;
    RETURN v_marked;
END;
$$;
COMMENT ON FUNCTION pystatus.sweep() IS
    'Marks services silent past their deadline as stale, in system_status and in history (dated '
    'at the deadline), so history holds the outage although the service never wrote again. '
    'Idempotent; the service''s next heartbeat ends it. Returns how many it marked; on a hot '
    'standby (a read-only replica) it marks nothing and returns 0.';

-- Re-applied with every change of these files: jobs added or changed by a new
-- version are scheduled by the same migrate that brings them.
SELECT pystatus.schedule_maintenance();
