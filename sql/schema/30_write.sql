-- The write path: heartbeats upsert system_status, and the copy trigger writes
-- every status write into system_status_history in the same transaction.
--
-- A heartbeat's whole path is in this file: heartbeat() (or heartbeat_many(),
-- or a service's own INSERT/UPDATE of system_status) -> the rules of
-- 10_rules.sql -> _copy_status_to_history(), which holds the login to its
-- allowances (80_roles.sql) and inserts the history row.

SET LOCAL search_path = pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- The copy trigger: no status without its history row
------------------------------------------------------------------------------

-- The window a status write's last_heartbeat must fall in, around the server's
-- clock: a service writing system_status directly with its own clock may be
-- minutes off, never days (a far-away time would make maintenance create
-- partitions for it). Constants, folded where they are used.
CREATE OR REPLACE FUNCTION pystatus._clock_tolerance()
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN interval '5 minutes';
COMMENT ON FUNCTION pystatus._clock_tolerance() IS
    'How far ahead of the server''s clock a status write''s last_heartbeat may be (a writer''s clock '
    'running fast).';

CREATE OR REPLACE FUNCTION pystatus._recent_window()
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN interval '1 day';
COMMENT ON FUNCTION pystatus._recent_window() IS
    'How far behind the server''s clock a status write''s last_heartbeat may be, except in a '
    'backfill by pystatus.record_heartbeat(), which checks its times against the partitions.';

CREATE OR REPLACE FUNCTION pystatus._backfilling()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(current_setting('pystatus.backfilling', true), '') = 'on' $$;
COMMENT ON FUNCTION pystatus._backfilling() IS
    'Whether pystatus.record_heartbeat() is writing (it announces itself in the transaction).';

CREATE OR REPLACE FUNCTION pystatus._may_write_stale()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- The alert worker (pystatus_alerter) sweeps too, through evaluate_alerts(),
    -- so that a silent service is marked within seconds of its deadline.
    SELECT pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'pystatus'), 'MEMBER')
        OR coalesce((SELECT pg_has_role(session_user, r.oid, 'MEMBER') FROM pg_roles AS r
                     WHERE r.rolname = 'pystatus_alerter'), false);
$$;
COMMENT ON FUNCTION pystatus._may_write_stale() IS
    'Whether the connected login may write the status stale: pystatus''s owner (the sweeper''s '
    'pg_cron job, a DBA) and the roles that are members of it, and the alert worker''s login '
    '(pystatus_alerter); no service.';

-- It runs as its owner (SECURITY DEFINER): a service that writes system_status
-- directly, with the table rights it had before pystatus, needs no right on
-- history, nor on anything else pystatus added.
-- search_path: not pinned, because it runs for every row written, and a pinned
-- path costs each row a configuration save and restore (batches of 500 ran
-- about 10 % slower). It names every table, function and operator with its
-- schema instead, which pgspot checks, so the caller's path reaches nothing.
CREATE OR REPLACE FUNCTION pystatus._copy_status_to_history()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
AS $$
BEGIN
    -- The rules of 10_rules.sql are the table's constraints; what they cannot
    -- say (the clock, who may write stale) is held here, for every writer.
    -- Each test is one comparison on the path every heartbeat takes.
    -- Only a new time is checked: a write that keeps the row's time (the
    -- sweeper's, a status change alone) is not a heartbeat from a clock.
    -- (OPERATOR() forms share one precedence: the parentheses are needed.)
    IF (TG_OP OPERATOR(pg_catalog.=) 'INSERT'
        OR NEW.last_heartbeat OPERATOR(pg_catalog.<>) OLD.last_heartbeat)
       AND (NOT (NEW.last_heartbeat OPERATOR(pg_catalog.<=)
                     (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) pystatus._clock_tolerance()))
            OR (NEW.last_heartbeat OPERATOR(pg_catalog.<)
                    (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) pystatus._recent_window())
                AND NOT pystatus._backfilling())) THEN
        RAISE EXCEPTION 'invalid last_heartbeat % for service %: must be within % before and % after the '
                        'server''s clock (%)', NEW.last_heartbeat, pg_catalog.quote_literal(NEW.service_name),
                        pystatus._recent_window(), pystatus._clock_tolerance(), pg_catalog.clock_timestamp()
            USING ERRCODE = 'PS004',
                  HINT = 'Write the server''s time (now()), or use pystatus.record_heartbeat() for older records.';
    END IF;
    IF NEW.status OPERATOR(pg_catalog.=) 'stale' THEN
        IF NOT pystatus._may_write_stale() THEN
            RAISE EXCEPTION 'invalid status ''stale'' for service %: it is reserved for pystatus, which writes it '
                            'when a service falls silent', pg_catalog.quote_literal(NEW.service_name)
                USING ERRCODE = 'PS002',
                      HINT = 'Services report ok, degraded, down, starting, stopping or maintenance.';
        END IF;
        -- The staleness sweeper marks a silent service stale without a new
        -- heartbeat, and writes that history row itself, dated at the deadline.
        IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE'
           AND NEW.last_heartbeat OPERATOR(pg_catalog.=) OLD.last_heartbeat THEN
            IF OLD.status OPERATOR(pg_catalog.<>) 'stale' THEN
                PERFORM pystatus._record_status_event(NEW.service_name, OLD.status, NEW.status,
                                                      NEW.last_heartbeat, true);
            END IF;
            RETURN NULL;
        END IF;
    END IF;
    -- A test of its own: a constant when not restricted, no query at all.
    IF pystatus._logins_restricted() THEN
        IF NOT pystatus._may_report(NEW.service_name) THEN
            RAISE EXCEPTION 'login % may not heartbeat for service %', session_user,
                pg_catalog.quote_literal(NEW.service_name)
                USING ERRCODE = 'PS007',
                      HINT = 'pystatus.service_logins says which services each login may report '
                             '(SELECT pystatus.allow_service(login, pattern) as the owner).';
        END IF;
    END IF;
    -- A change of status is an event for the alerts (75_alerts.sql), in this
    -- same transaction. Tested here rather than by triggers of their own: a
    -- trigger's WHEN clause is read back from the catalog at every statement,
    -- which cost a heartbeat 3.5 % more instructions; this comparison costs
    -- one that repeats its status nothing measurable.
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' OR NEW.status OPERATOR(pg_catalog.<>) OLD.status THEN
        PERFORM pystatus._record_status_event(
            NEW.service_name, CASE WHEN TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN OLD.status END,
            NEW.status, NEW.last_heartbeat, false);
    END IF;
    -- created_at only for a row written well after its time (a backfill, a
    -- clock behind): NULL costs no bytes, and most rows are written at their time.
    INSERT INTO public.system_status_history
        (heartbeat_timestamp, created_at, service_name, status, current_task, latency_ms)
    VALUES (NEW.last_heartbeat,
            CASE WHEN NEW.last_heartbeat OPERATOR(pg_catalog.<)
                      (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) interval '1 second')
                 THEN pg_catalog.clock_timestamp() END,
            NEW.service_name, NEW.status, NEW.current_task, NEW.latency_ms);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION pystatus._copy_status_to_history() IS
    'Trigger function: copies a system_status row into system_status_history, after checking '
    'that the login may report that service (pystatus.service_logins), and records a change of '
    'status in pystatus.status_events. Runs as its owner, so writers need no right on either.';

CREATE OR REPLACE TRIGGER system_status_copy_to_history
    AFTER INSERT OR UPDATE ON public.system_status
    FOR EACH ROW EXECUTE FUNCTION pystatus._copy_status_to_history();
COMMENT ON TRIGGER system_status_copy_to_history ON public.system_status IS
    'Copies every write into system_status_history in the same transaction: '
    'if the history insert fails, the status write fails with it.';

------------------------------------------------------------------------------
-- Heartbeats. They run as their owner (SECURITY DEFINER), so that a writer
-- needs EXECUTE only (pystatus_writer) and no right on any table; their
-- search_path is pinned so that a caller's objects are never picked up.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus.heartbeat(
    service_name text,
    status text DEFAULT 'ok',
    current_task text DEFAULT NULL,
    latency_ms double precision DEFAULT NULL)
RETURNS timestamptz
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_recorded_at timestamptz;
BEGIN
    IF NOT pystatus._is_valid_heartbeat(heartbeat.service_name, heartbeat.status, heartbeat.current_task,
                                        heartbeat.latency_ms) THEN
        PERFORM pystatus._check_heartbeat(heartbeat.service_name, heartbeat.status, heartbeat.current_task,
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
COMMENT ON FUNCTION pystatus.heartbeat(text, text, text, double precision) IS
    'Records a heartbeat at the database server''s clock: upserts system_status (the trigger '
    'copies it to history) and returns the recorded time. latency_ms is an optional measure '
    'for trends. Bad input raises PS001-PS003, PS006; a login pystatus.service_logins does not '
    'allow for the service, PS007 (from the copy trigger). Runs as its owner: callers need only '
    'EXECUTE (pystatus_writer).';

CREATE OR REPLACE FUNCTION pystatus.heartbeat_many(
    service_names text[],
    statuses text[],
    current_tasks text[] DEFAULT NULL,
    latencies_ms double precision[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
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
    WHERE NOT pystatus._is_valid_heartbeat(b.service_name, b.status, b.current_task, b.latency_ms)
    ORDER BY b.position LIMIT 1;
    IF v_bad IS NOT NULL THEN
        BEGIN
            PERFORM pystatus._check_heartbeat(service_names[v_bad], statuses[v_bad],
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
COMMENT ON FUNCTION pystatus.heartbeat_many(text[], text[], text[], double precision[]) IS
    'Records many heartbeats in one call (arrays in step, one element per heartbeat; tasks and '
    'latencies optional). All or nothing: a bad element raises naming its position. Returns the '
    'number of services recorded. Runs as its owner: callers need only EXECUTE (pystatus_writer).';

------------------------------------------------------------------------------
-- Backfills
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus.record_heartbeat(
    service_name text,
    status text,
    current_task text,
    at timestamptz,
    latency_ms double precision DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_oldest timestamptz;
    v_current boolean;
BEGIN
    PERFORM pystatus._check_heartbeat(record_heartbeat.service_name, record_heartbeat.status,
                                      record_heartbeat.current_task, record_heartbeat.latency_ms);
    IF at IS NULL OR NOT isfinite(at) THEN
        RAISE EXCEPTION 'invalid time %: must be a finite timestamp', quote_nullable(at)
            USING ERRCODE = 'PS004';
    END IF;
    IF at > clock_timestamp() THEN
        RAISE EXCEPTION 'invalid time %: it is in the future (server time is %)', at, clock_timestamp()
            USING ERRCODE = 'PS004', HINT = 'Check the time zone of the imported times.';
    END IF;
    SELECT min(starts) INTO v_oldest FROM pystatus.history_partitions WHERE NOT is_default;
    IF v_oldest IS NULL OR at < v_oldest THEN
        RAISE EXCEPTION 'invalid time %: older than the oldest history partition (from %)', at, v_oldest
            USING ERRCODE = 'PS004',
                  HINT = 'History before that has expired; raise the retention and create partitions to import it.';
    END IF;

    -- An old time is expected here: the copy trigger lets it through.
    PERFORM set_config('pystatus.backfilling', 'on', true);
    INSERT INTO public.system_status AS current
        (service_name, status, current_task, latency_ms, last_heartbeat, updated_at)
    VALUES (record_heartbeat.service_name, record_heartbeat.status, record_heartbeat.current_task,
            record_heartbeat.latency_ms, record_heartbeat.at, clock_timestamp())
    ON CONFLICT (service_name) DO UPDATE
        SET status = EXCLUDED.status,
            current_task = EXCLUDED.current_task,
            latency_ms = EXCLUDED.latency_ms,
            last_heartbeat = EXCLUDED.last_heartbeat,
            updated_at = EXCLUDED.updated_at
        WHERE current.last_heartbeat <= EXCLUDED.last_heartbeat;
    v_current := FOUND;
    PERFORM set_config('pystatus.backfilling', 'off', true);
    IF v_current THEN
        RETURN true;  -- the trigger wrote the history row
    END IF;
    -- Older than the current row: history only.
    INSERT INTO public.system_status_history
        (heartbeat_timestamp, created_at, service_name, status, current_task, latency_ms)
    VALUES (record_heartbeat.at, clock_timestamp(), record_heartbeat.service_name, record_heartbeat.status,
            record_heartbeat.current_task, record_heartbeat.latency_ms);
    RETURN false;
END;
$$;
COMMENT ON FUNCTION pystatus.record_heartbeat(text, text, text, timestamptz, double precision) IS
    'For imports and backfills: records a heartbeat at an explicit past time. It becomes the '
    'current status only if it is not older than the service''s last heartbeat (returns true); '
    'otherwise it goes to history only (returns false). Times in the future or before the oldest '
    'partition raise PS004.';
