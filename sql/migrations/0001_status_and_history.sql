-- Current status (one row per service, updated in place) and its history,
-- copied by an AFTER trigger in the same transaction.
--
-- Adopts an existing seed-shaped public.system_status (TIMESTAMP columns, live
-- rows) in place: rows are kept and naive timestamps are read in the time zone
-- named by the setting pystatus.legacy_time_zone (default UTC).

CREATE SCHEMA pystatus;
COMMENT ON SCHEMA pystatus IS
    'pystatus: service heartbeats with history. Functions here are the API; '
    'tables stay in public so existing dashboard queries keep working.';

------------------------------------------------------------------------------
-- Rules. Table constraints and the API's error messages share these
-- definitions, so a rule is written once.
------------------------------------------------------------------------------

CREATE FUNCTION pystatus.service_name_problem(p_service_name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN p_service_name IS NULL THEN 'must not be null'
    WHEN p_service_name = '' THEN 'must not be empty'
    WHEN char_length(p_service_name) > 64 THEN
        'must be at most 64 characters (it has ' || char_length(p_service_name) || ')'
    WHEN p_service_name !~ '[^[:space:]]' THEN 'must not be blank'
    WHEN p_service_name ~ '[[:cntrl:]]' THEN 'must not contain control characters'
    WHEN p_service_name ~ '^[[:space:]]|[[:space:]]$' THEN
        'must not start or end with white space'
END;
COMMENT ON FUNCTION pystatus.service_name_problem(text) IS
    'Why a service name breaks the naming rules (1-64 characters, not blank, no control '
    'characters, no surrounding white space), or NULL when it is valid.';

CREATE FUNCTION pystatus.is_status(p_status text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN p_status IN ('ok', 'degraded', 'down', 'starting', 'stopping', 'maintenance', 'stale');
COMMENT ON FUNCTION pystatus.is_status(text) IS
    'The status vocabulary: what services report (ok, degraded, down, starting, stopping, '
    'maintenance) plus stale, which only pystatus writes, when a service falls silent.';

CREATE FUNCTION pystatus.check_heartbeat(p_service_name text, p_status text, p_current_task text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    v_problem text := pystatus.service_name_problem(p_service_name);
BEGIN
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'invalid service name %: %',
            quote_nullable(left(p_service_name, 80)) || CASE WHEN char_length(p_service_name) > 80 THEN '...' ELSE '' END,
            v_problem
            USING ERRCODE = 'PS001',
                  HINT = 'A service name has 1 to 64 characters, is not blank and has no control characters.';
    END IF;
    IF p_status = 'stale' THEN
        RAISE EXCEPTION 'invalid status ''stale'': it is reserved for pystatus, which writes it when a service falls silent'
            USING ERRCODE = 'PS002',
                  HINT = 'Services report ok, degraded, down, starting, stopping or maintenance.';
    END IF;
    IF p_status IS NULL OR NOT pystatus.is_status(p_status) THEN
        RAISE EXCEPTION 'invalid status %: must be one of ok, degraded, down, starting, stopping, maintenance',
            quote_nullable(left(p_status, 80))
            USING ERRCODE = 'PS002',
                  HINT = 'Statuses are lower case.';
    END IF;
    IF octet_length(p_current_task) > 4096 THEN
        RAISE EXCEPTION 'invalid current_task: it is % bytes, the limit is 4096 bytes', octet_length(p_current_task)
            USING ERRCODE = 'PS003';
    END IF;
END;
$$;
COMMENT ON FUNCTION pystatus.check_heartbeat(text, text, text) IS
    'Raises a clear error (SQLSTATE PS001 name, PS002 status, PS003 task) for a heartbeat '
    'that breaks the rules; the heartbeat functions call it before writing anything.';

------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS public.system_status (
    service_name varchar(64) PRIMARY KEY,
    status varchar(16) NOT NULL,
    current_task text,
    last_heartbeat timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Adoption: a seed-shaped table has TIMESTAMP columns holding naive local times.
DO $$
DECLARE
    v_zone text := coalesce(nullif(current_setting('pystatus.legacy_time_zone', true), ''), 'UTC');
    v_missing text;
    v_bad_statuses text;
    v_bad_names text;
BEGIN
    SELECT string_agg(wanted, ', ') INTO v_missing
    FROM unnest(ARRAY['service_name', 'status', 'current_task', 'last_heartbeat', 'updated_at']) AS wanted
    WHERE NOT EXISTS (
        SELECT FROM pg_attribute
        WHERE attrelid = 'public.system_status'::regclass AND attname = wanted AND NOT attisdropped);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'public.system_status exists but lacks the column(s) %', v_missing
            USING HINT = 'pystatus adopts a table with the columns service_name, status, current_task, last_heartbeat, updated_at.';
    END IF;

    PERFORM now() AT TIME ZONE v_zone;  -- fails here, naming the zone, if it is unknown

    IF (SELECT atttypid FROM pg_attribute WHERE attrelid = 'public.system_status'::regclass
        AND attname = 'last_heartbeat') = 'timestamp'::regtype THEN
        EXECUTE format($f$
            ALTER TABLE public.system_status
                ALTER COLUMN last_heartbeat TYPE timestamptz USING last_heartbeat AT TIME ZONE %1$L,
                ALTER COLUMN updated_at TYPE timestamptz USING updated_at AT TIME ZONE %1$L
            $f$, v_zone);
        RAISE NOTICE 'adopted public.system_status: TIMESTAMP values read as % time', v_zone;
    END IF;

    SELECT string_agg(format('%L: %s', service_name, pystatus.service_name_problem(service_name)), '; ')
    INTO v_bad_names
    FROM public.system_status WHERE pystatus.service_name_problem(service_name) IS NOT NULL;
    IF v_bad_names IS NOT NULL THEN
        RAISE EXCEPTION 'public.system_status holds service names that break the naming rules: %', v_bad_names
            USING HINT = 'Rename them first (UPDATE system_status SET service_name = ...).';
    END IF;

    SELECT string_agg(format('%L (%s rows)', status, n), ', ') INTO v_bad_statuses
    FROM (SELECT status, count(*) AS n FROM public.system_status
          WHERE NOT pystatus.is_status(status) GROUP BY status) AS unknown;
    IF v_bad_statuses IS NOT NULL THEN
        RAISE EXCEPTION 'public.system_status holds statuses outside the pystatus vocabulary: %', v_bad_statuses
            USING HINT = 'Map them first, e.g. UPDATE system_status SET status = ''ok'' WHERE status = ''running''; '
                         'the vocabulary is ok, degraded, down, starting, stopping, maintenance.';
    END IF;
END;
$$;

UPDATE public.system_status SET updated_at = last_heartbeat WHERE updated_at IS NULL;

-- Updated in place at every heartbeat: the only index is the primary key, on a
-- column that never changes, and half of each page stays free so updates are
-- HOT (the new row version fits on the same page, no index entry is written).
ALTER TABLE public.system_status
    SET (fillfactor = 50),
    ALTER COLUMN updated_at SET DEFAULT now(),
    ALTER COLUMN updated_at SET NOT NULL,
    ADD CONSTRAINT system_status_service_name_valid
        CHECK (pystatus.service_name_problem(service_name) IS NULL),
    ADD CONSTRAINT system_status_status_valid CHECK (pystatus.is_status(status)),
    ADD CONSTRAINT system_status_current_task_size CHECK (octet_length(current_task) <= 4096);

COMMENT ON TABLE public.system_status IS
    'Current status, one row per service, updated in place by pystatus.heartbeat(). '
    'Every write is copied to system_status_history by a trigger.';
COMMENT ON COLUMN public.system_status.status IS
    'ok, degraded, down, starting, stopping or maintenance as reported; stale when pystatus found the service silent.';
COMMENT ON COLUMN public.system_status.current_task IS 'What the service says it is doing; at most 4096 bytes.';
COMMENT ON COLUMN public.system_status.last_heartbeat IS
    'When the latest heartbeat was recorded, by the database server''s clock.';
COMMENT ON COLUMN public.system_status.updated_at IS
    'When this row was last written (differs from last_heartbeat for backfilled records).';

CREATE TABLE public.system_status_history (
    id bigint GENERATED BY DEFAULT AS IDENTITY,
    heartbeat_timestamp timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    service_name varchar(64) NOT NULL,
    status varchar(16) NOT NULL,
    current_task text
) PARTITION BY RANGE (heartbeat_timestamp);

CREATE INDEX system_status_history_service_time
    ON public.system_status_history (service_name, heartbeat_timestamp DESC);

COMMENT ON TABLE public.system_status_history IS
    'Every status write, one row each, range-partitioned by heartbeat_timestamp; '
    'pg_partman creates the partitions and drops those past retention.';
COMMENT ON COLUMN public.system_status_history.id IS
    'Row identity. Not a key: a partitioned table''s key must include the partition column, '
    'and (service_name, heartbeat_timestamp) serves every lookup.';
COMMENT ON COLUMN public.system_status_history.heartbeat_timestamp IS
    'When the heartbeat happened (the partition key).';
COMMENT ON COLUMN public.system_status_history.created_at IS
    'When the row was written; later than heartbeat_timestamp for backfilled records.';

------------------------------------------------------------------------------
-- Trigger: no status without its history row
------------------------------------------------------------------------------

-- Names are schema-qualified instead of pinning search_path with SET, which
-- would cost a configuration save and restore on every heartbeat.
CREATE FUNCTION pystatus.copy_status_to_history()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO public.system_status_history
        (heartbeat_timestamp, service_name, status, current_task)
    VALUES (NEW.last_heartbeat, NEW.service_name, NEW.status, NEW.current_task);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION pystatus.copy_status_to_history() IS
    'Trigger function: copies a system_status row into system_status_history.';

CREATE TRIGGER system_status_copy_to_history
    AFTER INSERT OR UPDATE ON public.system_status
    FOR EACH ROW EXECUTE FUNCTION pystatus.copy_status_to_history();
COMMENT ON TRIGGER system_status_copy_to_history ON public.system_status IS
    'Copies every write into system_status_history in the same transaction: '
    'if the history insert fails, the status write fails with it.';

------------------------------------------------------------------------------
-- API
------------------------------------------------------------------------------

CREATE FUNCTION pystatus.heartbeat(
    service_name text,
    status text DEFAULT 'ok',
    current_task text DEFAULT NULL)
RETURNS timestamptz
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_recorded_at timestamptz;
BEGIN
    PERFORM pystatus.check_heartbeat(heartbeat.service_name, heartbeat.status, heartbeat.current_task);
    -- clock_timestamp() in SET is read after the row lock is taken, so a
    -- service's heartbeats are recorded in the order they were applied.
    INSERT INTO public.system_status AS current
        (service_name, status, current_task, last_heartbeat, updated_at)
    VALUES (heartbeat.service_name, heartbeat.status, heartbeat.current_task,
            clock_timestamp(), clock_timestamp())
    ON CONFLICT (service_name) DO UPDATE
        SET status = EXCLUDED.status,
            current_task = EXCLUDED.current_task,
            last_heartbeat = clock_timestamp(),
            updated_at = clock_timestamp()
    RETURNING current.last_heartbeat INTO v_recorded_at;
    RETURN v_recorded_at;
END;
$$;
COMMENT ON FUNCTION pystatus.heartbeat(text, text, text) IS
    'Records a heartbeat at the database server''s clock: upserts system_status (the trigger '
    'copies it to history) and returns the recorded time. Bad input raises PS001-PS003.';

CREATE FUNCTION pystatus.history(
    service_name text,
    since timestamptz,
    until timestamptz DEFAULT now())
RETURNS SETOF public.system_status_history
LANGUAGE sql STABLE
AS $$
    SELECT * FROM public.system_status_history AS h
    WHERE h.service_name = history.service_name
      AND h.heartbeat_timestamp >= history.since
      AND h.heartbeat_timestamp < history.until
    ORDER BY h.heartbeat_timestamp DESC;
$$;
COMMENT ON FUNCTION pystatus.history(text, timestamptz, timestamptz) IS
    'One service''s history rows in [since, until), newest first.';
