-- pystatus foundation, in one transaction so that an installation is never
-- half made (a history table without partitions would fail every heartbeat):
--   1. current status and its trigger-copied history;
--   2. pg_partman partitions and retention;
--   3. maintenance scheduling with pg_cron.
--
-- Settings read here (custom settings, set by `pystatus migrate --...`):
--   pystatus.legacy_time_zone    default 'UTC'      zone of an adopted table's TIMESTAMP values
--   pystatus.partition_interval  default '1 month'
--   pystatus.retention           default '60 days'
--   pystatus.premake             default 4          partitions made ahead of now

------------------------------------------------------------------------------
-- 1. Current status and history
------------------------------------------------------------------------------

-- Current status (one row per service, updated in place) and its history,
-- copied by an AFTER trigger in the same transaction. An existing seed-shaped
-- public.system_status (TIMESTAMP columns, live rows) is adopted in place:
-- rows are kept and naive timestamps are read in pystatus.legacy_time_zone.

-- While this script runs, names resolve in pg_catalog first and objects of other
-- schemas only when qualified (transaction-local: it ends with the script).
SET LOCAL search_path = pg_catalog, pg_temp;

CREATE SCHEMA pystatus;
COMMENT ON SCHEMA pystatus IS
    'pystatus: service heartbeats with history. Functions here are the API; '
    'tables stay in public so existing dashboard queries keep working.';

------------------------------------------------------------------------------
-- Rules. Table constraints, the fast test on the heartbeat path and the
-- API's error messages share these definitions. The naming rule has two
-- forms, one regular expression and one that says which rule is broken; a
-- property test keeps them in agreement.
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

CREATE FUNCTION pystatus.is_valid_service_name(p_service_name text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
-- One regular expression: 1 to 64 characters, none a control character, the
-- first and last not white space (so not blank). service_name_problem() says
-- which rule a name breaks; a test checks that the two agree.
RETURN p_service_name ~ '^[^[:space:][:cntrl:]]([^[:cntrl:]]{0,62}[^[:space:][:cntrl:]])?$';
COMMENT ON FUNCTION pystatus.is_valid_service_name(text) IS
    'Whether a service name keeps the naming rules; the fast test behind the table constraint '
    'and the heartbeat functions.';

CREATE FUNCTION pystatus.is_status(p_status text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN p_status IN ('ok', 'degraded', 'down', 'starting', 'stopping', 'maintenance', 'stale');
COMMENT ON FUNCTION pystatus.is_status(text) IS
    'The status vocabulary: what services report (ok, degraded, down, starting, stopping, '
    'maintenance) plus stale, which only pystatus writes, when a service falls silent.';

CREATE FUNCTION pystatus.check_heartbeat(
    p_service_name text, p_status text, p_current_task text, p_latency_ms double precision)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
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
    IF p_latency_ms < 0 OR p_latency_ms >= 'Infinity' THEN  -- NaN sorts above Infinity
        RAISE EXCEPTION 'invalid latency_ms %: must be a finite number, 0 or more', p_latency_ms
            USING ERRCODE = 'PS006';
    END IF;
END;
$$;
CREATE FUNCTION pystatus.is_valid_heartbeat(
    p_service_name text, p_status text, p_current_task text, p_latency_ms double precision)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(pystatus.is_valid_service_name(p_service_name)
                AND pystatus.is_status(p_status) AND p_status <> 'stale'
                AND coalesce(octet_length(p_current_task) <= 4096, true)
                AND coalesce(p_latency_ms >= 0 AND p_latency_ms < 'Infinity', true), false);
COMMENT ON FUNCTION pystatus.is_valid_heartbeat(text, text, text, double precision) IS
    'Whether a heartbeat keeps every rule, in one expression the heartbeat functions evaluate '
    'inline; only when it does not do they call check_heartbeat() for the precise error.';

COMMENT ON FUNCTION pystatus.check_heartbeat(text, text, text, double precision) IS
    'Raises a clear error (SQLSTATE PS001 name, PS002 status, PS003 task, PS006 latency) for a heartbeat '
    'that breaks the rules; the heartbeat functions call it before writing anything.';

------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------

-- A table that exists already is adopted only if it belongs to this role or to
-- a superuser: whoever owns it could add triggers, and those would run with the
-- rights of the heartbeat functions' owner.
DO $$
DECLARE
    v_owner name := (SELECT r.rolname FROM pg_class AS c JOIN pg_roles AS r ON r.oid = c.relowner
                     WHERE c.oid = to_regclass('public.system_status')
                       AND NOT (r.rolsuper OR r.rolname = current_user));
BEGIN
    IF to_regclass('public.system_status') IS NULL THEN
        CREATE TABLE public.system_status (
            service_name varchar(64) PRIMARY KEY,
            status varchar(16) NOT NULL,
            current_task text,
            last_heartbeat timestamptz NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            latency_ms double precision
        );
    ELSIF v_owner IS NOT NULL THEN
        RAISE EXCEPTION 'public.system_status belongs to role %, not to % (the role migrating)', v_owner, current_user
            USING HINT = format('As a superuser: ALTER TABLE public.system_status OWNER TO %I; then migrate again.',
                                current_user);
    END IF;
END;
$$;

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
        CHECK (pystatus.is_valid_service_name(service_name)),
    ADD CONSTRAINT system_status_status_valid CHECK (pystatus.is_status(status)),
    ADD CONSTRAINT system_status_current_task_size CHECK (octet_length(current_task) <= 4096),
    ADD COLUMN IF NOT EXISTS latency_ms double precision,
    ADD CONSTRAINT system_status_latency_ms_valid CHECK (latency_ms >= 0 AND latency_ms < 'Infinity');

COMMENT ON TABLE public.system_status IS
    'Current status, one row per service, updated in place by pystatus.heartbeat(). '
    'Every write is copied to system_status_history by a trigger.';
COMMENT ON COLUMN public.system_status.status IS
    'ok, degraded, down, starting, stopping or maintenance as reported; stale when pystatus found the service silent.';
COMMENT ON COLUMN public.system_status.current_task IS 'What the service says it is doing; at most 4096 bytes.';
COMMENT ON COLUMN public.system_status.last_heartbeat IS
    'When the latest heartbeat was recorded, by the database server''s clock.';
COMMENT ON COLUMN public.system_status.latency_ms IS
    'Optional measure sent with the heartbeat (e.g. a request latency), for trends; NULL when not sent.';
COMMENT ON COLUMN public.system_status.updated_at IS
    'When this row was last written (differs from last_heartbeat for backfilled records).';

CREATE TABLE public.system_status_history (
    id bigint GENERATED BY DEFAULT AS IDENTITY,
    heartbeat_timestamp timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    service_name varchar(64) NOT NULL,
    status varchar(16) NOT NULL,
    current_task text,
    latency_ms double precision
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

-- Run for every row written, so it does not pin search_path (a pinned path
-- costs each row a configuration save and restore: batches of 500 ran about
-- 10 % slower). It names every table and operator with its schema instead.
CREATE FUNCTION pystatus.copy_status_to_history()
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
COMMENT ON FUNCTION pystatus.heartbeat(text, text, text, double precision) IS
    'Records a heartbeat at the database server''s clock: upserts system_status (the trigger '
    'copies it to history) and returns the recorded time. latency_ms is an optional measure '
    'for trends. Bad input raises PS001-PS003, PS006.';

CREATE FUNCTION pystatus.history(
    service_name text,
    since timestamptz,
    until timestamptz DEFAULT now())
RETURNS SETOF public.system_status_history
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM public.system_status_history AS h
    WHERE h.service_name = history.service_name
      AND h.heartbeat_timestamp >= history.since
      AND h.heartbeat_timestamp < history.until
    ORDER BY h.heartbeat_timestamp DESC;
$$;
COMMENT ON FUNCTION pystatus.history(text, timestamptz, timestamptz) IS
    'One service''s history rows in [since, until), newest first.';

------------------------------------------------------------------------------
-- 2. Partitions (pg_partman)
------------------------------------------------------------------------------

-- pg_partman takes over system_status_history: partitions premade ahead,
-- expired ones dropped. Works with pg_partman 4.x ('native') and 5.x ('range').

CREATE FUNCTION pystatus.partman_schema()
RETURNS name
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name;
BEGIN
    SELECT n.nspname INTO v_schema
    FROM pg_catalog.pg_extension AS e JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_partman';
    IF v_schema IS NULL THEN
        RAISE EXCEPTION 'pg_partman is not installed in database %', current_database()
            USING ERRCODE = 'PS010',
                  HINT = 'As a superuser: CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman;';
    END IF;
    RETURN v_schema;
END;
$$;
COMMENT ON FUNCTION pystatus.partman_schema() IS
    'The schema pg_partman is installed in (it varies between installations).';

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_partman') THEN
        -- An existing schema is used only if this role or a superuser owns it:
        -- a schema's owner can replace the functions in it.
        IF to_regnamespace('partman') IS NULL THEN
            CREATE SCHEMA partman;
        ELSIF NOT (SELECT r.rolsuper OR r.rolname = current_user FROM pg_namespace AS n
                   JOIN pg_roles AS r ON r.oid = n.nspowner WHERE n.nspname = 'partman') THEN
            RAISE EXCEPTION 'schema partman belongs to another role: pg_partman is not installed into it'
                USING ERRCODE = 'PS010';
        END IF;
        CREATE EXTENSION pg_partman SCHEMA partman;
    END IF;
EXCEPTION
    WHEN insufficient_privilege OR undefined_file THEN
        RAISE EXCEPTION 'pg_partman is not installed in database % and this role cannot install it: %',
            current_database(), SQLERRM
            USING ERRCODE = 'PS010',
                  HINT = 'Install the package (Debian: postgresql-<major>-partman), then as a superuser: '
                         'CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman;';
END;
$$;

DO $$
DECLARE
    v_schema name := pystatus.partman_schema();
    v_major int := (SELECT split_part(extversion, '.', 1)::int FROM pg_extension WHERE extname = 'pg_partman');
    v_interval interval := coalesce(nullif(current_setting('pystatus.partition_interval', true), ''), '1 month');
    v_retention interval := coalesce(nullif(current_setting('pystatus.retention', true), ''), '60 days');
    v_premake int := coalesce(nullif(current_setting('pystatus.premake', true), ''), '4');
BEGIN
    -- Calendar units only: partitions must line up with pg_partman's own
    -- alignment (and hourly ones would make 1,440 tables for 60 days).
    IF v_interval NOT IN (interval '1 day', interval '1 week', interval '1 month') THEN
        RAISE EXCEPTION 'invalid pystatus.partition_interval %: must be 1 day, 1 week or 1 month', v_interval
            USING ERRCODE = 'PS005';
    END IF;
    IF v_retention <= interval '0' THEN
        RAISE EXCEPTION 'invalid pystatus.retention %: must be positive', v_retention
            USING ERRCODE = 'PS005';
    END IF;
    IF v_premake < 1 THEN
        RAISE EXCEPTION 'invalid pystatus.premake %: must be at least 1', v_premake
            USING ERRCODE = 'PS005';
    END IF;
    -- Partition bounds come from date_trunc() in the session time zone: fix it
    -- so bounds are the same whoever runs this.
    PERFORM set_config('TimeZone', 'UTC', true);
    EXECUTE format(
        'SELECT %I.create_parent(p_parent_table := %L, p_control := %L, p_type := %L, '
        'p_interval := %L, p_premake := %s, p_start_partition := %L, p_jobmon := false)',
        v_schema, 'public.system_status_history', 'heartbeat_timestamp',
        CASE WHEN v_major >= 5 THEN 'range' ELSE 'native' END,
        v_interval::text, v_premake, (now() - v_retention)::text);
    -- infinite_time_partitions: premake from the clock, not from the newest row,
    -- so partitions exist ahead even while no heartbeat arrives.
    EXECUTE format(
        'UPDATE %I.part_config SET retention = %L, retention_keep_table = false, '
        'infinite_time_partitions = true WHERE parent_table = %L',
        v_schema, v_retention::text, 'public.system_status_history');
END;
$$;

CREATE VIEW pystatus.history_partitions AS
SELECT
    c.oid::regclass AS partition,
    bound[1]::timestamptz AS starts,
    bound[2]::timestamptz AS ends,
    pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' AS is_default
FROM pg_catalog.pg_inherits AS i
JOIN pg_catalog.pg_class AS c ON c.oid = i.inhrelid
CROSS JOIN LATERAL regexp_match(
    pg_get_expr(c.relpartbound, c.oid), $re$FROM \('([^']+)'\) TO \('([^']+)'\)$re$) AS bound
WHERE i.inhparent = 'public.system_status_history'::regclass;
COMMENT ON VIEW pystatus.history_partitions IS
    'Partitions of system_status_history with their bounds [starts, ends); the default '
    'partition (is_default) catches rows no partition covers and should stay empty.';

CREATE FUNCTION pystatus.history_retention()
RETURNS interval
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_retention interval;
BEGIN
    EXECUTE format('SELECT retention::interval FROM %I.part_config WHERE parent_table = $1',
                   pystatus.partman_schema())
        INTO v_retention USING 'public.system_status_history';
    RETURN v_retention;
END;
$$;
COMMENT ON FUNCTION pystatus.history_retention() IS
    'How long history is kept (pg_partman''s retention for system_status_history); NULL keeps it forever.';

CREATE FUNCTION pystatus.set_history_retention(retention interval)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF retention <= interval '0' THEN
        RAISE EXCEPTION 'invalid retention %: must be positive (or NULL to keep history forever)', retention
            USING ERRCODE = 'PS005';
    END IF;
    EXECUTE format('UPDATE %I.part_config SET retention = $1 WHERE parent_table = $2',
                   pystatus.partman_schema())
        USING retention::text, 'public.system_status_history';
END;
$$;
COMMENT ON FUNCTION pystatus.set_history_retention(interval) IS
    'Changes how long history is kept; the next maintenance drops partitions that ended longer ago.';

-- The functions that call pg_partman (create_history_partitions, maintain,
-- move_default_rows) cannot pin search_path: pg_partman 4.x sets search_path
-- for the session while it works and then sets it back, for the session, to
-- what it found, so under a pinned caller the caller's session would be left
-- with the pinned path. They run in the caller's search_path instead, and
-- name everything with its schema, operators included; what they compute is
-- done by pinned helpers.

CREATE FUNCTION pystatus.missing_history_partitions(p_from timestamptz, p_until timestamptz)
RETURNS timestamptz[]
LANGUAGE plpgsql STABLE
SET "TimeZone" = 'UTC'
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_interval interval;
    v_anchor timestamptz := (SELECT min(starts) FROM pystatus.history_partitions);
    v_starts timestamptz[];
BEGIN
    IF p_from IS NULL OR p_until IS NULL OR NOT isfinite(p_from) OR NOT isfinite(p_until) OR p_from >= p_until THEN
        RAISE EXCEPTION 'invalid range [%, %): must be finite and non-empty', p_from, p_until
            USING ERRCODE = 'PS005';
    END IF;
    EXECUTE format('SELECT partition_interval::interval FROM %I.part_config WHERE parent_table = $1',
                   pystatus.partman_schema())
        INTO v_interval USING 'public.system_status_history';
    -- Step from an existing bound, in both directions, so new partitions line
    -- up with the others (pg_partman's create_partition_time takes starts as given).
    SELECT array_agg(s ORDER BY s) INTO v_starts
    FROM (SELECT generate_series(v_anchor, p_from - v_interval, -v_interval) AS s
          UNION SELECT generate_series(v_anchor, p_until, v_interval)) AS candidates
    WHERE s + v_interval > p_from AND s < p_until
      AND NOT EXISTS (SELECT FROM pystatus.history_partitions AS p WHERE s >= p.starts AND s < p.ends);
    RETURN v_starts;
END;
$$;
COMMENT ON FUNCTION pystatus.missing_history_partitions(timestamptz, timestamptz) IS
    'Starts of the history partitions missing in [p_from, p_until), aligned with the existing ones; '
    'NULL when none is missing.';

CREATE FUNCTION pystatus.create_history_partitions(p_from timestamptz, p_until timestamptz)
RETURNS integer
LANGUAGE plpgsql
SET "TimeZone" = 'UTC'
AS $$
DECLARE
    v_starts timestamptz[] := pystatus.missing_history_partitions(p_from, p_until);
BEGIN
    IF v_starts IS NOT NULL THEN
        EXECUTE pg_catalog.format(
            'SELECT %I.create_partition_time(p_parent_table := $1, p_partition_times := $2)',
            pystatus.partman_schema())
            USING 'public.system_status_history', v_starts;
    END IF;
    RETURN coalesce(pg_catalog.cardinality(v_starts), 0);
END;
$$;
COMMENT ON FUNCTION pystatus.create_history_partitions(timestamptz, timestamptz) IS
    'Creates the missing history partitions covering [p_from, p_until), aligned with the existing '
    'ones; returns how many it created. For imports of older history (raise the retention first, '
    'or maintenance drops them again).';

CREATE FUNCTION pystatus.history_partition_names()
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- Bare names: the partitions live in public.
    SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}')
    FROM pystatus.history_partitions AS p JOIN pg_class AS c ON c.oid = p.partition;
$$;
COMMENT ON FUNCTION pystatus.history_partition_names() IS
    'The history partitions'' names, for maintain() to report what it created and dropped.';

CREATE FUNCTION pystatus.premade_range(OUT oldest timestamptz, OUT premade_until timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    oldest := (SELECT min(starts) FROM pystatus.history_partitions);
    EXECUTE format('SELECT now() + premake * partition_interval::interval FROM %I.part_config '
                   'WHERE parent_table = $1', pystatus.partman_schema())
        INTO premade_until USING 'public.system_status_history';
END;
$$;
COMMENT ON FUNCTION pystatus.premade_range() IS
    'From the oldest partition to the horizon pg_partman premakes to (now + premake partitions): '
    'where maintain() fills holes.';

CREATE FUNCTION pystatus.maintenance_report(p_before text[], p_moved bigint)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'created', (SELECT coalesce(jsonb_agg(p ORDER BY p), '[]') FROM unnest(after) AS p WHERE p <> ALL (p_before)),
        'dropped', (SELECT coalesce(jsonb_agg(p ORDER BY p), '[]') FROM unnest(p_before) AS p WHERE p <> ALL (after)),
        'moved_from_default', p_moved)
    FROM pystatus.history_partition_names() AS after;
$$;
COMMENT ON FUNCTION pystatus.maintenance_report(text[], bigint) IS
    'What maintain() did: the partitions created and dropped since p_before, and the rows moved.';

CREATE FUNCTION pystatus.maintain()
RETURNS jsonb
LANGUAGE plpgsql
SET "TimeZone" = 'UTC'
AS $$
DECLARE
    v_before text[];
    v_moved bigint := 0;
    v_range record;
BEGIN
    IF pg_catalog.pg_is_in_recovery() THEN
        RETURN pg_catalog.jsonb_build_object('skipped', 'this server is a replica');
    END IF;
    v_before := pystatus.history_partition_names();

    -- Rows in the default partition (maintenance was missed for longer than the
    -- premade partitions last) block creating the partitions they belong in:
    -- move them first.
    IF pystatus.history_default_rows() OPERATOR(pg_catalog.>) 0 THEN
        v_moved := pystatus.move_default_rows();
        RAISE WARNING 'moved % history rows out of the default partition', v_moved
            USING HINT = 'Maintenance did not run for a while: check its schedule.';
    END IF;

    EXECUTE pg_catalog.format('SELECT %I.run_maintenance(p_parent_table := %L, p_jobmon := false)',
                              pystatus.partman_schema(), 'public.system_status_history');

    -- pg_partman premakes after the newest partition only: also fill any hole
    -- up to the premade horizon (e.g. a partition dropped by hand).
    v_range := pystatus.premade_range();
    PERFORM pystatus.create_history_partitions(v_range.oldest, v_range.premade_until);
    RETURN pystatus.maintenance_report(v_before, v_moved);
END;
$$;
COMMENT ON FUNCTION pystatus.maintain() IS
    'Partition maintenance for system_status_history: moves rows out of the default partition, '
    'drops partitions past retention, premakes partitions ahead and fills holes. Run by pg_cron '
    '(or `pystatus maintain`); returns the partitions created and dropped and the rows moved.';

CREATE FUNCTION pystatus.history_default_rows()
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_default regclass := (SELECT partition FROM pystatus.history_partitions WHERE is_default);
    v_rows bigint := 0;
BEGIN
    IF v_default IS NOT NULL THEN
        EXECUTE format('SELECT count(*) FROM %s', v_default) INTO v_rows;
    END IF;
    RETURN v_rows;
END;
$$;
COMMENT ON FUNCTION pystatus.history_default_rows() IS
    'Rows in the default history partition: heartbeats that fell where no partition existed. Should be 0.';

CREATE FUNCTION pystatus.move_default_rows()
RETURNS bigint
LANGUAGE plpgsql
SET "TimeZone" = 'UTC'
AS $$
DECLARE
    v_moved bigint;
BEGIN
    EXECUTE pg_catalog.format('SELECT %I.partition_data_time(p_parent_table := %L, p_batch_count := %s)',
                              pystatus.partman_schema(), 'public.system_status_history',
                              greatest(pystatus.history_default_rows(), 1))
        INTO v_moved;
    RETURN v_moved;
END;
$$;
COMMENT ON FUNCTION pystatus.move_default_rows() IS
    'Remedy for rows in the default partition: creates the partitions they belong to and moves '
    'them there (pg_partman''s partition_data_time). Returns the number of rows moved.';

CREATE FUNCTION pystatus.record_heartbeat(
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
BEGIN
    PERFORM pystatus.check_heartbeat(record_heartbeat.service_name, record_heartbeat.status,
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
    IF FOUND THEN
        RETURN true;  -- the trigger wrote the history row
    END IF;
    -- Older than the current row: history only.
    INSERT INTO public.system_status_history
        (heartbeat_timestamp, service_name, status, current_task, latency_ms)
    VALUES (record_heartbeat.at, record_heartbeat.service_name, record_heartbeat.status,
            record_heartbeat.current_task, record_heartbeat.latency_ms);
    RETURN false;
END;
$$;
COMMENT ON FUNCTION pystatus.record_heartbeat(text, text, text, timestamptz, double precision) IS
    'For imports and backfills: records a heartbeat at an explicit past time. It becomes the '
    'current status only if it is not older than the service''s last heartbeat (returns true); '
    'otherwise it goes to history only (returns false). Times in the future or before the oldest '
    'partition raise PS004.';

------------------------------------------------------------------------------
-- 3. Maintenance schedule (pg_cron)
------------------------------------------------------------------------------

-- pg_cron runs pystatus.maintain() every hour. Three installations:
--   pg_cron in this database        this migration schedules the job;
--   pg_cron in another database     (cron.database_name, usually 'postgres'):
--                                   `pystatus schedule --cron-dsn ...` registers
--                                   it there with cron.schedule_in_database;
--   no pg_cron                      `pystatus maintain` from any scheduler.

CREATE FUNCTION pystatus.maintenance_jobs()
RETURNS TABLE (job_name text, schedule text, command text, database text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'pystatus-maintain:' || current_database(), '7 * * * *',
           'SELECT pystatus.maintain()', current_database()::text;
$$;
COMMENT ON FUNCTION pystatus.maintenance_jobs() IS
    'The pg_cron jobs that keep this database''s history in shape: name, schedule, command and '
    'the database each runs in.';

CREATE FUNCTION pystatus.maintenance_scheduler()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron')
            THEN 'pg_cron in this database'
        WHEN current_setting('cron.database_name', true) IS NOT NULL
            THEN 'pg_cron in database ' || current_setting('cron.database_name', true)
        ELSE 'none'
    END;
$$;
COMMENT ON FUNCTION pystatus.maintenance_scheduler() IS
    'Where maintenance can be scheduled from: pg_cron in this database, pg_cron in another '
    'database (cron.database_name), or none (run `pystatus maintain` from another scheduler).';

CREATE FUNCTION pystatus.schedule_maintenance()
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron')
       AND current_setting('cron.database_name', true) = current_database() THEN
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

CREATE FUNCTION pystatus.unschedule_maintenance()
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

DO $$ BEGIN PERFORM pystatus.schedule_maintenance(); END $$;

CREATE FUNCTION pystatus.setup_report(OUT item text, OUT value text, OUT todo text)
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
             || ' in schema ' || pystatus.partman_schema();
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
    ELSIF v_scheduler LIKE 'pg_cron in database %' THEN
        todo := format('register the jobs there: pystatus schedule --cron-dsn "dbname=%s ..." (%s)',
                       current_setting('cron.database_name'), v_jobs);
    ELSE
        todo := format('no pg_cron: run `pystatus maintain` every minute from another scheduler (%s)',
                       v_jobs);
    END IF;
    RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION pystatus.setup_report() IS
    'The installation at a glance (pg_partman, partitions, retention, default partition, '
    'maintenance scheduling) with, in todo, what is left for the DBA to do.';
