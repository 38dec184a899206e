-- The write path: heartbeats upsert system_status, and the copy trigger writes
-- every status write into system_status_history in the same transaction.
--
-- A heartbeat's whole path is in this file: heartbeat() (or heartbeat_many(),
-- or a service's own INSERT/UPDATE of system_status) -> the rules of
-- 10_rules.sql -> _copy_status_to_history(), once per statement, which holds
-- the login to its allowances (90_roles.sql) and inserts the history rows.

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

-- The bounds of pystatus.limits, read where a write could pass them: a new
-- service (the copy trigger, for every writer) and a batch (heartbeat_many()).
CREATE OR REPLACE FUNCTION pystatus._check_service_count(service_name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_limit integer := (SELECT l.max_services FROM pystatus.limits AS l);
    v_count bigint;
BEGIN
    -- An index-only count stops one past the limit, whatever the table holds.
    SELECT count(*) INTO v_count
    FROM (SELECT FROM public.system_status LIMIT v_limit + 1) AS s;
    IF v_count > v_limit THEN
        RAISE EXCEPTION 'too many services: system_status may hold % (pystatus.limits), so service % was not added',
                        v_limit, quote_literal(service_name)
            USING ERRCODE = 'PS009',
                  HINT = 'Remove the services no longer used (DELETE FROM system_status WHERE ...), or raise '
                         'the limit as pystatus''s owner: SELECT pystatus.set_limits(max_services => ...).';
    END IF;
END;
$$;
COMMENT ON FUNCTION pystatus._check_service_count(text) IS
    'Raises PS009 when system_status holds more services than pystatus.limits.max_services (the '
    'copy trigger calls it for statements that add services; service_name names one of them).';

CREATE OR REPLACE FUNCTION pystatus.set_limits(
    max_services integer DEFAULT NULL, max_batch integer DEFAULT NULL,
    max_metric_services integer DEFAULT NULL)
RETURNS pystatus.limits
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_limits pystatus.limits;
BEGIN
    IF set_limits.max_services <= 0 THEN
        RAISE EXCEPTION 'invalid max_services %: must be positive', set_limits.max_services USING ERRCODE = 'PS005';
    END IF;
    IF set_limits.max_batch <= 0 THEN
        RAISE EXCEPTION 'invalid max_batch %: must be positive', set_limits.max_batch USING ERRCODE = 'PS005';
    END IF;
    IF set_limits.max_metric_services <= 0 THEN
        RAISE EXCEPTION 'invalid max_metric_services %: must be positive', set_limits.max_metric_services
            USING ERRCODE = 'PS005';
    END IF;
    UPDATE pystatus.limits AS l
    SET max_services = coalesce(set_limits.max_services, l.max_services),
        max_batch = coalesce(set_limits.max_batch, l.max_batch),
        max_metric_services = coalesce(set_limits.max_metric_services, l.max_metric_services)
    RETURNING l.* INTO v_limits;
    RETURN v_limits;
END;
$$;
COMMENT ON FUNCTION pystatus.set_limits(integer, integer, integer) IS
    'Sets the bounds (NULL keeps one): how many services system_status may hold, how many '
    'heartbeats one heartbeat_many() call may carry, and how many services a Prometheus scrape '
    'has series of. Returns them. Owner only.';

-- Every writer's text is cleaned as it is written (10_rules.sql, clean_text()),
-- by the copy trigger, which sees every status write: a text that needs it is
-- cleaned in history as it is copied, and in system_status by an UPDATE of its
-- own (rare: the heartbeat functions' callers and most services send clean
-- text). A row trigger would cost every heartbeat its old row fetched again.
CREATE OR REPLACE FUNCTION pystatus._clean_current_tasks(service_names text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The copy trigger, fired again by this UPDATE, knows it by this setting.
    PERFORM set_config('pystatus.cleaning', 'on', true);
    UPDATE public.system_status AS s SET current_task = pystatus.clean_text(s.current_task)
    WHERE s.service_name = ANY (_clean_current_tasks.service_names)
      AND s.current_task ~ pystatus._unclean_text_pattern();
    PERFORM set_config('pystatus.cleaning', 'off', true);
END;
$$;
COMMENT ON FUNCTION pystatus._clean_current_tasks(text[]) IS
    'Cleans the current_task of these services in system_status (pystatus.clean_text()); the copy '
    'trigger calls it for a statement that wrote text needing it.';

CREATE OR REPLACE FUNCTION pystatus._cleaning()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(current_setting('pystatus.cleaning', true), '') = 'on' $$;
COMMENT ON FUNCTION pystatus._cleaning() IS
    'Whether pystatus._clean_current_tasks() is writing (the copy trigger then copies nothing).';

-- Why a status write is refused, raised from one place for the copy
-- trigger's two paths (one row, many rows).
CREATE OR REPLACE FUNCTION pystatus._refuse_status_write(problem text, service_name text, at timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF problem = 'time' THEN
        RAISE EXCEPTION 'invalid last_heartbeat % for service %: must be within % before and % after the '
                        'server''s clock (%)', at, quote_literal(service_name),
                        pystatus._recent_window(), pystatus._clock_tolerance(), clock_timestamp()
            USING ERRCODE = 'PS004',
                  HINT = 'Write the server''s time (now()), or use pystatus.record_heartbeat() for older records.';
    ELSIF problem = 'stale' THEN
        RAISE EXCEPTION 'invalid status ''stale'' for service %: it is reserved for pystatus, which writes it '
                        'when a service falls silent', quote_literal(service_name)
            USING ERRCODE = 'PS002',
                  HINT = 'Services report ok, degraded, down, starting, stopping or maintenance.';
    ELSE
        RAISE EXCEPTION 'login % may not heartbeat for service %', session_user, quote_literal(service_name)
            USING ERRCODE = 'PS007',
                  HINT = 'pystatus.service_logins says which services each login may report '
                         '(SELECT pystatus.allow_service(login, pattern) as the owner).';
    END IF;
END;
$$;
COMMENT ON FUNCTION pystatus._refuse_status_write(text, text, timestamptz) IS
    'Raises the copy trigger''s refusal of a status write: a time outside the window (PS004), '
    'stale from a service (PS002), or a login not allowed the service (PS007).';

-- Once per statement, not per row: a heartbeat's UPDATE is read from its
-- transition tables (new_rows, old_rows) by one query and tested with plain
-- expressions, as a row trigger would; a batch (heartbeat_many(), a service's
-- own multi-row write) is tested and copied by a few set-based queries, not
-- one trigger call per row. An INSERT (a new service) takes the set-based
-- path. Instructions counted for each form are in docs/benchmarks-notes.md.
--
-- It runs as its owner (SECURITY DEFINER): a service that writes system_status
-- directly, with the table rights it had before pystatus, needs no right on
-- history, nor on anything else pystatus added. So its search_path is pinned
-- like every definer function's: PL/pgSQL resolves the types of its variables
-- and expressions by name when it first runs, types are looked up in pg_temp
-- first unless the path lists it last, and any login may create a temporary
-- type or domain named like a built-in one.
CREATE OR REPLACE FUNCTION pystatus._copy_status_to_history()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- One reading of the clock for the statement: its rows were written together.
    v_clock constant timestamptz := pg_catalog.clock_timestamp();
    v_row record;
    v_written record;
    v_changed bigint;
    v_unclean text[];
BEGIN
    -- Its own cleaning of the tasks it copied: nothing to copy again.
    IF pg_catalog.pg_trigger_depth() OPERATOR(pg_catalog.>) 1 AND pystatus._cleaning() THEN
        RETURN NULL;
    END IF;
    -- The rules of 10_rules.sql are the table's constraints; what they cannot
    -- say (the clock, who may write stale, which login may report which
    -- service) is held here, for every writer. Only a new time is checked: a
    -- write that keeps the row's time (the sweeper's, a status change alone)
    -- is not a heartbeat from a clock. The sweeper's own rows (stale, the time
    -- kept) get no history row here: sweep() writes it, dated at the deadline.
    -- (OPERATOR() forms share one precedence: the parentheses are needed.)
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        -- The first row and how many there are; LIMIT 1 stops the pairing at
        -- once, and a pair is used only when the statement wrote one row.
        SELECT n.service_name, n.status, n.last_heartbeat, n.current_task, n.latency_ms,
               o.status AS old_status, o.last_heartbeat AS old_time,
               (SELECT pg_catalog.count(*) FROM new_rows AS c) AS total
        INTO v_row
        FROM new_rows AS n CROSS JOIN old_rows AS o
        LIMIT 1;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        IF v_row.total OPERATOR(pg_catalog.=) 1 THEN
            IF v_row.last_heartbeat OPERATOR(pg_catalog.<>) v_row.old_time
               AND (NOT (v_row.last_heartbeat OPERATOR(pg_catalog.<=) (v_clock OPERATOR(pg_catalog.+) pystatus._clock_tolerance()))
                    OR (v_row.last_heartbeat OPERATOR(pg_catalog.<) (v_clock OPERATOR(pg_catalog.-) pystatus._recent_window())
                        AND NOT pystatus._backfilling())) THEN
                PERFORM pystatus._refuse_status_write('time', v_row.service_name, v_row.last_heartbeat);
            END IF;
            IF v_row.status OPERATOR(pg_catalog.=) 'stale' THEN
                IF NOT pystatus._may_write_stale() THEN
                    PERFORM pystatus._refuse_status_write('stale', v_row.service_name, v_row.last_heartbeat);
                END IF;
            END IF;
            -- A test of its own: a constant when not restricted, no query at all.
            IF pystatus._logins_restricted() THEN
                IF NOT pystatus._may_report(v_row.service_name) THEN
                    PERFORM pystatus._refuse_status_write('login', v_row.service_name, v_row.last_heartbeat);
                END IF;
            END IF;
            -- status events: a change of status is an event for the alerts
            -- (76_alert_decisions.sql), in this same transaction; stale written by the
            -- sweeper (the time kept) is silence, dated at the deadline.
            IF v_row.status OPERATOR(pg_catalog.<>) v_row.old_status THEN
                INSERT INTO pystatus.status_events (service_name, at, from_status, to_status, cause)
                SELECT v_row.service_name,
                       CASE WHEN s.silence
                            THEN v_row.last_heartbeat OPERATOR(pg_catalog.+) coalesce(e.expected_interval, pystatus.default_expected_interval())
                                 OPERATOR(pg_catalog.+) coalesce(e.grace, pystatus.default_grace())
                            ELSE v_row.last_heartbeat END,
                       v_row.old_status, v_row.status, CASE WHEN s.silence THEN 'silence' ELSE 'reported' END
                FROM (SELECT v_row.status OPERATOR(pg_catalog.=) 'stale'
                             AND v_row.last_heartbeat OPERATOR(pg_catalog.=) v_row.old_time AS silence) AS s
                LEFT JOIN pystatus.service_expectations AS e ON e.service_name OPERATOR(pg_catalog.=) v_row.service_name;
            END IF;
            -- end of status events
            IF v_row.current_task OPERATOR(pg_catalog.~) pystatus._unclean_text_pattern() THEN
                PERFORM pystatus._clean_current_tasks(ARRAY[v_row.service_name]);
                v_row.current_task := pystatus.clean_text(v_row.current_task);
            END IF;
            IF v_row.status OPERATOR(pg_catalog.<>) 'stale' OR v_row.last_heartbeat OPERATOR(pg_catalog.<>) v_row.old_time THEN
                INSERT INTO public.system_status_history
                    (heartbeat_timestamp, created_at, service_name, status, current_task, latency_ms)
                VALUES (v_row.last_heartbeat,
                        CASE WHEN v_row.last_heartbeat OPERATOR(pg_catalog.<) (v_clock OPERATOR(pg_catalog.-) interval '1 second')
                             THEN v_clock END,
                        v_row.service_name, v_row.status, v_row.current_task, v_row.latency_ms);
            END IF;
            RETURN NULL;
        END IF;
    END IF;

    -- Many rows, or an INSERT: the same tests in one pass over the rows. No
    -- query joins new rows to old ones: PL/pgSQL keeps the plan made at its
    -- first run, and a nested loop kept for batches of 500 would compare every
    -- row with every other. Old rows are looked up only for the rare new row
    -- dated a day back or written stale; changes of status are found by
    -- EXCEPT, which hashes or sorts whatever the plan.
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        SELECT pg_catalog.count(*) AS total,
               pg_catalog.min(w.service_name) FILTER (WHERE w.bad_time) AS bad_time,
               pg_catalog.min(w.service_name) FILTER (WHERE w.says_stale) AS says_stale,
               pg_catalog.min(w.service_name) FILTER (WHERE w.refused) AS refused
        INTO v_written
        FROM (SELECT n.service_name,
                     n.status OPERATOR(pg_catalog.=) 'stale' AS says_stale,
                     NOT (n.last_heartbeat OPERATOR(pg_catalog.<=) (v_clock OPERATOR(pg_catalog.+) pystatus._clock_tolerance()))
                     OR CASE WHEN n.last_heartbeat OPERATOR(pg_catalog.<) (v_clock OPERATOR(pg_catalog.-) pystatus._recent_window())
                             THEN NOT pystatus._backfilling()
                                  AND NOT EXISTS (SELECT FROM old_rows AS o
                                                  WHERE o.service_name OPERATOR(pg_catalog.=) n.service_name
                                                    AND o.last_heartbeat OPERATOR(pg_catalog.=) n.last_heartbeat)
                             ELSE false END AS bad_time,
                     CASE WHEN pystatus._logins_restricted() THEN NOT pystatus._may_report(n.service_name)
                          ELSE false END AS refused
              FROM new_rows AS n) AS w;
        v_changed := (SELECT pg_catalog.count(*) FROM (SELECT c.service_name, c.status FROM new_rows AS c
                                                       EXCEPT ALL
                                                       SELECT o.service_name, o.status FROM old_rows AS o) AS x);
    ELSE
        SELECT pg_catalog.count(*) AS total,
               pg_catalog.min(w.service_name) FILTER (WHERE w.bad_time) AS bad_time,
               pg_catalog.min(w.service_name) FILTER (WHERE w.says_stale) AS says_stale,
               pg_catalog.min(w.service_name) FILTER (WHERE w.refused) AS refused
        INTO v_written
        FROM (SELECT n.service_name,
                     n.status OPERATOR(pg_catalog.=) 'stale' AS says_stale,
                     NOT (n.last_heartbeat OPERATOR(pg_catalog.<=) (v_clock OPERATOR(pg_catalog.+) pystatus._clock_tolerance()))
                     OR (n.last_heartbeat OPERATOR(pg_catalog.<) (v_clock OPERATOR(pg_catalog.-) pystatus._recent_window())
                         AND NOT pystatus._backfilling()) AS bad_time,
                     CASE WHEN pystatus._logins_restricted() THEN NOT pystatus._may_report(n.service_name)
                          ELSE false END AS refused
              FROM new_rows AS n) AS w;
        v_changed := v_written.total;  -- every row is a first status
    END IF;
    IF v_written.total OPERATOR(pg_catalog.=) 0 THEN
        RETURN NULL;
    END IF;
    -- New services: the fleet stays within its bound (pystatus.limits).
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        PERFORM pystatus._check_service_count(
            (SELECT pg_catalog.min(n.service_name) FROM new_rows AS n));
    END IF;
    IF v_written.bad_time IS NOT NULL THEN
        PERFORM pystatus._refuse_status_write(
            'time', v_written.bad_time,
            (SELECT n.last_heartbeat FROM new_rows AS n
             WHERE n.service_name OPERATOR(pg_catalog.=) v_written.bad_time LIMIT 1));
    END IF;
    IF v_written.says_stale IS NOT NULL THEN
        IF NOT pystatus._may_write_stale() THEN
            PERFORM pystatus._refuse_status_write('stale', v_written.says_stale, NULL);
        END IF;
    END IF;
    IF v_written.refused IS NOT NULL THEN
        PERFORM pystatus._refuse_status_write('login', v_written.refused, NULL);
    END IF;

    -- status events, as above, for the rows whose status changed.
    IF v_changed OPERATOR(pg_catalog.>) 0 THEN
        IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
            INSERT INTO pystatus.status_events (service_name, at, from_status, to_status, cause)
            SELECT n.service_name,
                   CASE WHEN s.silence
                        THEN n.last_heartbeat OPERATOR(pg_catalog.+) coalesce(e.expected_interval, pystatus.default_expected_interval())
                             OPERATOR(pg_catalog.+) coalesce(e.grace, pystatus.default_grace())
                        ELSE n.last_heartbeat END,
                   o.status, n.status, CASE WHEN s.silence THEN 'silence' ELSE 'reported' END
            FROM (SELECT c.service_name, c.status FROM new_rows AS c
                  EXCEPT ALL
                  SELECT o.service_name, o.status FROM old_rows AS o) AS changed
            JOIN new_rows AS n ON n.service_name OPERATOR(pg_catalog.=) changed.service_name
            LEFT JOIN old_rows AS o ON o.service_name OPERATOR(pg_catalog.=) changed.service_name
            LEFT JOIN pystatus.service_expectations AS e ON e.service_name OPERATOR(pg_catalog.=) n.service_name
            CROSS JOIN LATERAL (SELECT coalesce(n.status OPERATOR(pg_catalog.=) 'stale'
                                                AND n.last_heartbeat OPERATOR(pg_catalog.=) o.last_heartbeat,
                                                false) AS silence) AS s;
        ELSE
            INSERT INTO pystatus.status_events (service_name, at, from_status, to_status, cause)
            SELECT n.service_name, n.last_heartbeat, NULL, n.status, 'reported' FROM new_rows AS n;
        END IF;
    END IF;
    -- end of status events

    v_unclean := ARRAY(SELECT n.service_name FROM new_rows AS n
                       WHERE n.current_task OPERATOR(pg_catalog.~) pystatus._unclean_text_pattern());
    IF v_unclean OPERATOR(pg_catalog.<>) '{}' THEN
        PERFORM pystatus._clean_current_tasks(v_unclean);
    END IF;

    -- created_at only for a row written well after its time (a backfill, a
    -- clock behind): NULL costs no bytes, and most rows are written at their time.
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
        INSERT INTO public.system_status_history
            (heartbeat_timestamp, created_at, service_name, status, current_task, latency_ms)
        SELECT n.last_heartbeat,
               CASE WHEN n.last_heartbeat OPERATOR(pg_catalog.<) (v_clock OPERATOR(pg_catalog.-) interval '1 second')
                    THEN v_clock END,
               n.service_name, n.status,
               CASE WHEN n.current_task OPERATOR(pg_catalog.~) pystatus._unclean_text_pattern()
                    THEN pystatus.clean_text(n.current_task) ELSE n.current_task END,
               n.latency_ms
        FROM new_rows AS n
        WHERE CASE WHEN n.status OPERATOR(pg_catalog.=) 'stale'
                   THEN NOT EXISTS (SELECT FROM old_rows AS o
                                    WHERE o.service_name OPERATOR(pg_catalog.=) n.service_name
                                      AND o.last_heartbeat OPERATOR(pg_catalog.=) n.last_heartbeat)
                   ELSE true END;
    ELSE
        INSERT INTO public.system_status_history
            (heartbeat_timestamp, created_at, service_name, status, current_task, latency_ms)
        SELECT n.last_heartbeat,
               CASE WHEN n.last_heartbeat OPERATOR(pg_catalog.<) (v_clock OPERATOR(pg_catalog.-) interval '1 second')
                    THEN v_clock END,
               n.service_name, n.status,
               CASE WHEN n.current_task OPERATOR(pg_catalog.~) pystatus._unclean_text_pattern()
                    THEN pystatus.clean_text(n.current_task) ELSE n.current_task END,
               n.latency_ms
        FROM new_rows AS n;
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION pystatus._copy_status_to_history() IS
    'Statement trigger function: copies the system_status rows a statement wrote into '
    'system_status_history, after checking their times, that only pystatus writes stale, and that '
    'the login may report those services (pystatus.service_logins); records changes of status in '
    'pystatus.status_events. Runs as its owner, so writers need no right on either.';

CREATE OR REPLACE TRIGGER system_status_copy_inserts
    AFTER INSERT ON public.system_status
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pystatus._copy_status_to_history();
COMMENT ON TRIGGER system_status_copy_inserts ON public.system_status IS
    'Copies every inserted status into system_status_history in the same transaction: '
    'if the history insert fails, the status write fails with it.';

CREATE OR REPLACE TRIGGER system_status_copy_updates
    AFTER UPDATE ON public.system_status
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pystatus._copy_status_to_history();
COMMENT ON TRIGGER system_status_copy_updates ON public.system_status IS
    'Copies every updated status into system_status_history in the same transaction: '
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
    -- A known service's heartbeat is an UPDATE, which fires the copy trigger
    -- once; an upsert would fire it for its INSERT too. clock_timestamp() in
    -- SET is read after the row lock is taken, so a service's heartbeats are
    -- recorded in the order they were applied.
    UPDATE public.system_status AS current
    SET status = heartbeat.status, current_task = heartbeat.current_task, latency_ms = heartbeat.latency_ms,
        last_heartbeat = clock_timestamp(), updated_at = clock_timestamp()
    WHERE current.service_name = heartbeat.service_name
    RETURNING current.last_heartbeat INTO v_recorded_at;
    IF FOUND THEN
        RETURN v_recorded_at;
    END IF;
    -- A new service (another session may be adding it too).
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
    v_limit integer;
    v_recorded integer;
    v_bad record;
BEGIN
    IF cardinality(statuses) IS DISTINCT FROM v_count
       OR (current_tasks IS NOT NULL AND cardinality(current_tasks) <> v_count)
       OR (latencies_ms IS NOT NULL AND cardinality(latencies_ms) <> v_count) THEN
        RAISE EXCEPTION 'invalid batch: % service names but % statuses, % tasks, % latencies',
            v_count, cardinality(statuses), cardinality(current_tasks), cardinality(latencies_ms)
            USING ERRCODE = 'PS005', HINT = 'The arrays go in step: one element per heartbeat.';
    END IF;
    IF coalesce(array_ndims(service_names), 1) > 1 OR coalesce(array_ndims(statuses), 1) > 1
       OR coalesce(array_ndims(current_tasks), 1) > 1 OR coalesce(array_ndims(latencies_ms), 1) > 1 THEN
        RAISE EXCEPTION 'invalid batch: the arrays must have one dimension'
            USING ERRCODE = 'PS005', HINT = 'The arrays go in step: one element per heartbeat.';
    END IF;
    v_limit := (SELECT l.max_batch FROM pystatus.limits AS l);
    IF v_count > v_limit THEN
        RAISE EXCEPTION 'invalid batch: % heartbeats, the limit is % a call (pystatus.limits)', v_count, v_limit
            USING ERRCODE = 'PS009', HINT = 'Send them in several calls.';
    END IF;
    -- One set-based test; the precise error only for the first bad heartbeat.
    -- Elements are told apart by their place in the arrays (1 for the first),
    -- whatever index the arrays start at.
    SELECT b.* INTO v_bad
    FROM unnest(service_names, statuses, current_tasks, latencies_ms)
         WITH ORDINALITY AS b(service_name, status, current_task, latency_ms, position)
    WHERE NOT pystatus._is_valid_heartbeat(b.service_name, b.status, b.current_task, b.latency_ms)
    ORDER BY b.position LIMIT 1;
    IF FOUND THEN
        BEGIN
            PERFORM pystatus._check_heartbeat(v_bad.service_name, v_bad.status, v_bad.current_task,
                                              v_bad.latency_ms);
        EXCEPTION WHEN SQLSTATE 'PS001' OR SQLSTATE 'PS002' OR SQLSTATE 'PS003' OR SQLSTATE 'PS006' THEN
            RAISE EXCEPTION 'heartbeat % of %: %', v_bad.position, v_count, SQLERRM USING ERRCODE = SQLSTATE;
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
            pystatus.clean_text(record_heartbeat.current_task), record_heartbeat.latency_ms);
    RETURN false;
END;
$$;
COMMENT ON FUNCTION pystatus.record_heartbeat(text, text, text, timestamptz, double precision) IS
    'For imports and backfills: records a heartbeat at an explicit past time. It becomes the '
    'current status only if it is not older than the service''s last heartbeat (returns true); '
    'otherwise it goes to history only (returns false). Times in the future or before the oldest '
    'partition raise PS004.';

------------------------------------------------------------------------------
-- Expectations
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus.set_expectations(
    service_name text,
    expected_interval interval,
    grace interval DEFAULT pystatus.default_grace())
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    PERFORM pystatus._check_heartbeat(set_expectations.service_name, 'ok', NULL, NULL);
    IF set_expectations.expected_interval IS NULL OR set_expectations.expected_interval <= interval '0' THEN
        RAISE EXCEPTION 'invalid expected_interval %: must be positive', set_expectations.expected_interval
            USING ERRCODE = 'PS005';
    END IF;
    IF set_expectations.grace IS NULL OR set_expectations.grace < interval '0' THEN
        RAISE EXCEPTION 'invalid grace %: must be 0 or more', set_expectations.grace
            USING ERRCODE = 'PS005';
    END IF;
    INSERT INTO pystatus.service_expectations AS e (service_name, expected_interval, grace)
    VALUES (set_expectations.service_name, set_expectations.expected_interval, set_expectations.grace)
    ON CONFLICT (service_name) DO UPDATE
        SET expected_interval = EXCLUDED.expected_interval, grace = EXCLUDED.grace;
    -- Silence in past history is judged by the new expectations too: its
    -- rollups are recomputed, where raw history is still kept.
    INSERT INTO pystatus.rollup_dirty (service_name, since)
    SELECT set_expectations.service_name, f.since
    FROM (SELECT pystatus._rollups_recomputable_from(set_expectations.service_name)) AS f(since)
    WHERE f.since IS NOT NULL;
END;
$$;
COMMENT ON FUNCTION pystatus.set_expectations(text, interval, interval) IS
    'Sets how often a service heartbeats and the grace before silence makes it stale. Applies to '
    'its whole raw history (its rollups are recomputed from its oldest raw row; older rollups, whose '
    'raw history has expired, are kept); PS001/PS005 on bad input.';
