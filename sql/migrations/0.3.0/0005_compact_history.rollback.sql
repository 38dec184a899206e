-- Undo 0005_compact_history: created_at filled in and written by default
-- again, a row id from a sequence (NULL on the rows written meanwhile: an
-- identity column cannot be added to a table with partitions), and the index
-- on (service_name, heartbeat_timestamp DESC). Both columns stay nullable, so
-- that heartbeats go on until the older version's definitions are applied.
-- It rewrites history: on a large one, expect it to take a while and to hold
-- heartbeats.

SET LOCAL search_path = pg_catalog, pg_temp;

-- The old index is still there if `pystatus migrate` had not finished the new one.
DROP INDEX IF EXISTS public.system_status_history_service_time;
DROP INDEX public.system_status_history_service_hour;
CREATE INDEX system_status_history_service_time
    ON public.system_status_history (service_name, heartbeat_timestamp DESC);
UPDATE public.system_status_history SET created_at = heartbeat_timestamp WHERE created_at IS NULL;
ALTER TABLE public.system_status_history
    ALTER COLUMN created_at SET DEFAULT now(),
    ADD COLUMN id bigint;
CREATE SEQUENCE public.system_status_history_id_seq OWNED BY public.system_status_history.id;
ALTER TABLE public.system_status_history
    ALTER COLUMN id SET DEFAULT nextval('public.system_status_history_id_seq');
COMMENT ON COLUMN public.system_status_history.id IS
    'Row identity. Not a key: a partitioned table''s key must include the partition column, '
    'and (service_name, heartbeat_timestamp) serves every lookup.';
COMMENT ON COLUMN public.system_status_history.created_at IS
    'When the row was written; later than heartbeat_timestamp for backfilled records.';

-- The copy trigger as 0004 left it: once per row. (A statement trigger left
-- behind would copy every write twice once the older version re-applies its
-- definitions.)
DROP TRIGGER system_status_copy_inserts ON public.system_status;
DROP TRIGGER system_status_copy_updates ON public.system_status;
DROP FUNCTION pystatus._refuse_status_write(text, text, timestamptz);
CREATE OR REPLACE FUNCTION pystatus._record_status_event(
    service_name text, from_status text, to_status text, last_heartbeat timestamptz, silence boolean)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO pystatus.status_events (service_name, at, from_status, to_status, cause)
    SELECT _record_status_event.service_name,
           -- Stale written by the sweeper: dated at the deadline.
           CASE WHEN _record_status_event.silence
                THEN _record_status_event.last_heartbeat + coalesce(e.expected_interval, interval '60 seconds')
                     + coalesce(e.grace, interval '60 seconds')
                ELSE _record_status_event.last_heartbeat END,
           _record_status_event.from_status, _record_status_event.to_status,
           CASE WHEN _record_status_event.silence THEN 'silence' ELSE 'reported' END
    FROM (SELECT) AS one
    LEFT JOIN pystatus.service_expectations AS e ON e.service_name = _record_status_event.service_name;
$$;
COMMENT ON FUNCTION pystatus._record_status_event(text, text, text, timestamptz, boolean) IS
    'Records a status change in pystatus.status_events (from_status NULL: the service''s first '
    'status; silence: stale written by the sweeper, dated at the deadline).';

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
    INSERT INTO public.system_status_history
        (heartbeat_timestamp, service_name, status, current_task, latency_ms)
    VALUES (NEW.last_heartbeat, NEW.service_name, NEW.status, NEW.current_task, NEW.latency_ms);
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

DELETE FROM pystatus.definitions_applied;
