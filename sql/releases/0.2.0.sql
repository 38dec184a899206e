-- pystatus 0.2.0 as released: what `pystatus migrate` ran on an empty database
-- (default settings), in one transaction. Frozen: never edit this file.
-- migrations: 0001_baseline

-- The pystatus schema: every function, view and table of pystatus but the two
-- status tables, which stay in public so that existing queries keep working.
--
-- How these files are used (sql/README.md has the whole story):
--   * each object is defined in exactly one file of sql/schema/, by concern;
--   * 20_tables.sql holds what has state (tables, types, pg_partman's
--     configuration): it is created and changed by sql/migrations/ only, and a
--     test proves the migrations build exactly what it says;
--   * every other file is re-applied by `pystatus migrate`, in the same
--     transaction as the pending migrations, whenever any of them changed:
--     the files before 20_tables.sql before the migrations, the rest after.
--
-- Private helpers start with an underscore; everything else is the SQL API.

SET LOCAL search_path = pg_catalog, pg_temp;

-- Functions here run with their owner's rights, so whoever owns the schema
-- could replace them: an existing schema is used only if this role or a
-- superuser owns it.
DO $$
DECLARE
    v_owner name := (SELECT r.rolname FROM pg_namespace AS n JOIN pg_roles AS r ON r.oid = n.nspowner
                     WHERE n.nspname = 'pystatus');
BEGIN
    IF v_owner IS NULL THEN
        CREATE SCHEMA pystatus;
    ELSIF NOT (v_owner = current_user
               OR (SELECT rolsuper FROM pg_roles WHERE rolname = v_owner)) THEN
        RAISE EXCEPTION 'schema pystatus belongs to role %, not to % (the role migrating)', v_owner, current_user
            USING ERRCODE = 'PS010',
                  HINT = format('As a superuser: ALTER SCHEMA pystatus OWNER TO %I; then migrate again.', current_user);
    END IF;
END;
$$;

COMMENT ON SCHEMA pystatus IS
    'pystatus: service heartbeats with history. Functions here are the API (names starting with '
    '_ are private helpers); the status tables stay in public so existing dashboard queries keep working.';

-- Rules: what a service name, a status and a heartbeat may be, and how a status
-- counts. The tables' constraints (20_tables.sql), the fast test on the
-- heartbeat path and the API's error messages share these definitions, so
-- they come before the tables.
--
-- The naming rule has two forms, one regular expression and one that says
-- which rule is broken; a property test keeps them in agreement.

SET LOCAL search_path = pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- Service names, statuses, heartbeats
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus.service_name_problem(service_name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN service_name IS NULL THEN 'must not be null'
    WHEN service_name = '' THEN 'must not be empty'
    WHEN char_length(service_name) > 64 THEN
        'must be at most 64 characters (it has ' || char_length(service_name) || ')'
    WHEN service_name !~ '[^[:space:]]' THEN 'must not be blank'
    WHEN service_name ~ '[[:cntrl:]]' THEN 'must not contain control characters'
    WHEN service_name ~ '^[[:space:]]|[[:space:]]$' THEN
        'must not start or end with white space'
END;
COMMENT ON FUNCTION pystatus.service_name_problem(text) IS
    'Why a service name breaks the naming rules (1-64 characters, not blank, no control '
    'characters, no surrounding white space), or NULL when it is valid.';

CREATE OR REPLACE FUNCTION pystatus.is_valid_service_name(service_name text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
-- One regular expression: 1 to 64 characters, none a control character, the
-- first and last not white space (so not blank). service_name_problem() says
-- which rule a name breaks; a test checks that the two agree.
RETURN service_name ~ '^[^[:space:][:cntrl:]]([^[:cntrl:]]{0,62}[^[:space:][:cntrl:]])?$';
COMMENT ON FUNCTION pystatus.is_valid_service_name(text) IS
    'Whether a service name keeps the naming rules; the fast test behind the table constraint '
    'and the heartbeat functions.';

CREATE OR REPLACE FUNCTION pystatus.is_status(status text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN status IN ('ok', 'degraded', 'down', 'starting', 'stopping', 'maintenance', 'stale');
COMMENT ON FUNCTION pystatus.is_status(text) IS
    'The status vocabulary: what services report (ok, degraded, down, starting, stopping, '
    'maintenance) plus stale, which only pystatus writes, when a service falls silent.';

CREATE OR REPLACE FUNCTION pystatus._is_valid_heartbeat(
    service_name text, status text, current_task text, latency_ms double precision)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(pystatus.is_valid_service_name(service_name)
                AND pystatus.is_status(status) AND status <> 'stale'
                AND coalesce(octet_length(current_task) <= 4096, true)
                AND coalesce(latency_ms >= 0 AND latency_ms < 'Infinity', true), false);
COMMENT ON FUNCTION pystatus._is_valid_heartbeat(text, text, text, double precision) IS
    'Whether a heartbeat keeps every rule, in one expression the heartbeat functions evaluate '
    'inline; only when it does not do they call _check_heartbeat() for the precise error.';

CREATE OR REPLACE FUNCTION pystatus._check_heartbeat(
    service_name text, status text, current_task text, latency_ms double precision)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_problem text := pystatus.service_name_problem(service_name);
BEGIN
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'invalid service name %: %',
            quote_nullable(left(service_name, 80)) || CASE WHEN char_length(service_name) > 80 THEN '...' ELSE '' END,
            v_problem
            USING ERRCODE = 'PS001',
                  HINT = 'A service name has 1 to 64 characters, is not blank and has no control characters.';
    END IF;
    IF status = 'stale' THEN
        RAISE EXCEPTION 'invalid status ''stale'': it is reserved for pystatus, which writes it when a service falls silent'
            USING ERRCODE = 'PS002',
                  HINT = 'Services report ok, degraded, down, starting, stopping or maintenance.';
    END IF;
    IF status IS NULL OR NOT pystatus.is_status(status) THEN
        RAISE EXCEPTION 'invalid status %: must be one of ok, degraded, down, starting, stopping, maintenance',
            quote_nullable(left(status, 80))
            USING ERRCODE = 'PS002',
                  HINT = 'Statuses are lower case.';
    END IF;
    IF octet_length(current_task) > 4096 THEN
        RAISE EXCEPTION 'invalid current_task: it is % bytes, the limit is 4096 bytes', octet_length(current_task)
            USING ERRCODE = 'PS003';
    END IF;
    IF latency_ms < 0 OR latency_ms >= 'Infinity' THEN  -- NaN sorts above Infinity
        RAISE EXCEPTION 'invalid latency_ms %: must be a finite number, 0 or more', latency_ms
            USING ERRCODE = 'PS006';
    END IF;
END;
$$;
COMMENT ON FUNCTION pystatus._check_heartbeat(text, text, text, double precision) IS
    'Raises a clear error (SQLSTATE PS001 name, PS002 status, PS003 task, PS006 latency) for a heartbeat '
    'that breaks the rules; the heartbeat functions call it before writing anything.';

------------------------------------------------------------------------------
-- The status model (README, "How pystatus reads history"):
--   * a history row's status holds from its time until the next row;
--   * a service silent for longer than expected_interval + grace is stale
--     from that deadline on, unless its last status was stopping or
--     maintenance (planned, so silence is expected) or stale already;
--   * categories: up = ok, degraded; down = down, stale;
--     maintenance = maintenance; no data = starting, stopping, and any time
--     before a service's first heartbeat or after now.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus.goes_stale(status text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN status NOT IN ('stale', 'stopping', 'maintenance');
COMMENT ON FUNCTION pystatus.goes_stale(text) IS
    'Whether silence past the deadline turns this status stale: not for stopping and maintenance '
    '(the service said it would be quiet) nor for stale itself.';

CREATE OR REPLACE FUNCTION pystatus.status_category(status text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN status IN ('ok', 'degraded') THEN 'up'
    WHEN status IN ('down', 'stale') THEN 'down'
    WHEN status = 'maintenance' THEN 'maintenance'
    ELSE 'no data'  -- starting, stopping: planned transitions, neither up nor down
END;
COMMENT ON FUNCTION pystatus.status_category(text) IS
    'How a status counts for uptime: up (ok, degraded), down (down, stale), maintenance, '
    'or no data (starting, stopping).';

------------------------------------------------------------------------------
-- Time: durations and the rollups' buckets. Constant SQL functions, which
-- PostgreSQL inlines and folds where they are used, so naming them costs nothing.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus._microseconds(duration interval)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (extract(epoch FROM duration) * 1000000)::bigint;
COMMENT ON FUNCTION pystatus._microseconds(interval) IS
    'A duration in whole microseconds: rollups add these exactly.';

CREATE OR REPLACE FUNCTION pystatus._bucket_origin()
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN timestamptz '2000-01-01 00:00:00+00';
COMMENT ON FUNCTION pystatus._bucket_origin() IS
    'Where the rollups'' hours and days start counting (date_bin''s origin): UTC midnight, so '
    'hourly and daily buckets are UTC hours and days.';

CREATE OR REPLACE FUNCTION pystatus._rollup_delay()
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN interval '5 minutes';
COMMENT ON FUNCTION pystatus._rollup_delay() IS
    'How long after an hour ends it is rolled up, so that its heartbeats have committed; a '
    'history row dated further back than this when written is late and marks its rollups dirty.';

-- pystatus 0.2.0: the tables, types and pg_partman configuration that
-- sql/schema/20_tables.sql describes. Released: never edit this file (a test
-- holds its checksum); change tables with a new migration.
--
-- An existing seed-shaped public.system_status (TIMESTAMP columns, live rows)
-- is adopted in place: rows are kept and naive timestamps are read in
-- pystatus.legacy_time_zone (default UTC).
--
-- Settings read here (custom settings, set by `pystatus migrate --...`):
--   pystatus.legacy_time_zone    default 'UTC'      zone of an adopted table's TIMESTAMP values
--   pystatus.partition_interval  default '1 month'
--   pystatus.retention           default '60 days'
--   pystatus.premake             default 4          partitions made ahead of now

SET LOCAL search_path = pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- Current status: created, or adopted
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
        -- Updated in place at every heartbeat: the only index is the primary key, on a
        -- column that never changes, and half of each page stays free so updates are
        -- HOT (the new row version fits on the same page, no index entry is written).
        CREATE TABLE public.system_status (
            service_name varchar(64) PRIMARY KEY
                CONSTRAINT system_status_service_name_valid CHECK (pystatus.is_valid_service_name(service_name)),
            status varchar(16) NOT NULL
                CONSTRAINT system_status_status_valid CHECK (pystatus.is_status(status)),
            current_task text
                CONSTRAINT system_status_current_task_size CHECK (octet_length(current_task) <= 4096),
            last_heartbeat timestamptz NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            latency_ms double precision
                CONSTRAINT system_status_latency_ms_valid CHECK (latency_ms >= 0 AND latency_ms < 'Infinity')
        ) WITH (fillfactor = 50);
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

-- Into the shape of a new table (the same constraints, under the same names).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'public.system_status'::regclass
                   AND conname = 'system_status_service_name_valid') THEN
        UPDATE public.system_status SET updated_at = last_heartbeat WHERE updated_at IS NULL;
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
    END IF;
END;
$$;

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
-- Partitions: pg_partman premakes them and drops expired ones. Works with
-- pg_partman 4.x ('native') and 5.x ('range').
------------------------------------------------------------------------------

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
    v_schema name := (SELECT extnamespace::regnamespace::name FROM pg_extension WHERE extname = 'pg_partman');
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

------------------------------------------------------------------------------
-- What services promise
------------------------------------------------------------------------------

CREATE TABLE pystatus.service_expectations (
    service_name varchar(64) PRIMARY KEY
        CONSTRAINT service_expectations_service_name_valid
        CHECK (pystatus.is_valid_service_name(service_name)),
    expected_interval interval NOT NULL CHECK (expected_interval > interval '0'),
    grace interval NOT NULL CHECK (grace >= interval '0')
);
COMMENT ON TABLE pystatus.service_expectations IS
    'How often each service promises to heartbeat, and how much lateness to forgive. Services '
    'without a row get the defaults of pystatus.live_status (60 s interval, 60 s grace).';

------------------------------------------------------------------------------
-- Rollups: per service per hour and per day, kept longer than raw history
------------------------------------------------------------------------------

CREATE TABLE pystatus.rollup_hourly (
    service_name varchar(64) NOT NULL,
    bucket timestamptz NOT NULL,
    up_us bigint NOT NULL,
    down_us bigint NOT NULL,
    maintenance_us bigint NOT NULL,
    heartbeats integer NOT NULL,
    latency_count integer NOT NULL,
    latency_avg double precision,
    latency_p50 double precision,
    latency_p95 double precision,
    latency_max double precision,
    PRIMARY KEY (service_name, bucket)
);
CREATE INDEX rollup_hourly_bucket ON pystatus.rollup_hourly (bucket);
COMMENT ON TABLE pystatus.rollup_hourly IS
    'Per service per UTC hour: microseconds up, down and in maintenance (the rest of the hour is '
    'no data), heartbeats received, and the latency measure''s count/avg/p50/p95/max. '
    'Maintained by pystatus.refresh_rollups(); equal to the same figures computed from raw history.';

CREATE TABLE pystatus.rollup_daily (LIKE pystatus.rollup_hourly INCLUDING ALL);
COMMENT ON TABLE pystatus.rollup_daily IS
    'pystatus.rollup_hourly per UTC day (percentiles computed over the day''s raw rows).';

CREATE TABLE pystatus.rollup_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    rolled_until timestamptz NOT NULL,
    retention interval NOT NULL DEFAULT interval '400 days' CHECK (retention > interval '0')
);
COMMENT ON TABLE pystatus.rollup_state IS
    'rolled_until: rollups hold every hour before it (an hour is rolled up 5 minutes after it '
    'ends); retention: how long rollups are kept (default 400 days, longer than raw history).';
INSERT INTO pystatus.rollup_state (rolled_until)
SELECT date_bin('1 hour', coalesce(min(heartbeat_timestamp), now()), timestamptz '2000-01-01 00:00:00+00')
FROM public.system_status_history;

CREATE TABLE pystatus.rollup_dirty (
    service_name varchar(64) NOT NULL,
    since timestamptz NOT NULL
);
COMMENT ON TABLE pystatus.rollup_dirty IS
    'Services whose rollups must be recomputed from since: history rows written late (backfills) '
    'or changed expectations. Emptied by pystatus.refresh_rollups().';

CREATE TYPE pystatus.uptime_report AS (
    service_name text,
    since timestamptz,
    until timestamptz,
    up_seconds numeric,
    down_seconds numeric,
    maintenance_seconds numeric,
    no_data_seconds numeric,
    uptime double precision
);
COMMENT ON TYPE pystatus.uptime_report IS
    'Uptime over [since, until): seconds up, down, in maintenance and without data (they add up '
    'to the window), and uptime = up / (up + down), NULL when the service was never up or down.';

------------------------------------------------------------------------------
-- Which login may report which services (opt-in; 80_roles.sql)
------------------------------------------------------------------------------

CREATE TABLE pystatus.service_logins (
    login name NOT NULL,
    service_pattern text NOT NULL CHECK (service_pattern <> ''),
    -- * is the only wildcard: service names often hold _ and %, which LIKE
    -- would take for wildcards too.
    like_pattern text NOT NULL GENERATED ALWAYS AS (
        replace(replace(replace(replace(service_pattern, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%')) STORED,
    PRIMARY KEY (login, service_pattern)
);
COMMENT ON TABLE pystatus.service_logins IS
    'Which services each login may heartbeat for: a service name, or a pattern where * stands for any '
    'characters (billing-*). Empty: any login granted pystatus_writer may report any service. Once it '
    'has a row, a login may only report the services its rows match; the owner (and roles that are '
    'members of it) and superusers are not restricted.';
COMMENT ON COLUMN pystatus.service_logins.like_pattern IS
    'service_pattern as a LIKE pattern: * becomes %, and \, % and _ match themselves.';

------------------------------------------------------------------------------
-- The installation itself
------------------------------------------------------------------------------

CREATE TABLE pystatus.definitions_applied (
    version text NOT NULL,
    sources_sha256 text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pystatus.definitions_applied IS
    'Each time `pystatus migrate` (re-)applied the definitions of sql/schema/: the pystatus version, '
    'a checksum of those files, and when. The newest row says which definitions are installed.';

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

-- search_path: not pinned, because it runs for every row written, and a pinned
-- path costs each row a configuration save and restore (batches of 500 ran
-- about 10 % slower). It names every table, function and operator with its
-- schema instead, which pgspot checks.
CREATE OR REPLACE FUNCTION pystatus._copy_status_to_history()
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
    INSERT INTO public.system_status_history
        (heartbeat_timestamp, service_name, status, current_task, latency_ms)
    VALUES (NEW.last_heartbeat, NEW.service_name, NEW.status, NEW.current_task, NEW.latency_ms);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION pystatus._copy_status_to_history() IS
    'Trigger function: copies a system_status row into system_status_history, after checking '
    'that the login may report that service (pystatus.service_logins).';

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

-- Partitions and their maintenance. pg_partman (4.x or 5.x, found at run time
-- in whatever schema it was installed) premakes the partitions of
-- system_status_history and drops those past retention; maintain() wraps it,
-- moves rows out of the default partition and fills holes.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION pystatus._partman_schema()
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
COMMENT ON FUNCTION pystatus._partman_schema() IS
    'The schema pg_partman is installed in (it varies between installations).';

CREATE OR REPLACE VIEW pystatus.history_partitions AS
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

------------------------------------------------------------------------------
-- Retention
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus.history_retention()
RETURNS interval
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_retention interval;
BEGIN
    EXECUTE format('SELECT retention::interval FROM %I.part_config WHERE parent_table = $1',
                   pystatus._partman_schema())
        INTO v_retention USING 'public.system_status_history';
    RETURN v_retention;
END;
$$;
COMMENT ON FUNCTION pystatus.history_retention() IS
    'How long history is kept (pg_partman''s retention for system_status_history); NULL keeps it forever.';

CREATE OR REPLACE FUNCTION pystatus.set_history_retention(retention interval)
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
                   pystatus._partman_schema())
        USING retention::text, 'public.system_status_history';
END;
$$;
COMMENT ON FUNCTION pystatus.set_history_retention(interval) IS
    'Changes how long history is kept; the next maintenance drops partitions that ended longer ago.';

------------------------------------------------------------------------------
-- Creating partitions
--
-- The functions that call pg_partman (create_history_partitions, maintain,
-- move_default_rows) cannot pin search_path: pg_partman 4.x sets search_path
-- for the session while it works and then sets it back, for the session, to
-- what it found, so under a pinned caller the caller's session would be left
-- with the pinned path. They run in the caller's search_path instead, and
-- name everything with its schema, operators included; what they compute is
-- done by pinned helpers.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus._missing_history_partitions(since timestamptz, until timestamptz)
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
    IF since IS NULL OR until IS NULL OR NOT isfinite(since) OR NOT isfinite(until) OR since >= until THEN
        RAISE EXCEPTION 'invalid range [%, %): must be finite and non-empty', since, until
            USING ERRCODE = 'PS005';
    END IF;
    EXECUTE format('SELECT partition_interval::interval FROM %I.part_config WHERE parent_table = $1',
                   pystatus._partman_schema())
        INTO v_interval USING 'public.system_status_history';
    -- Step from an existing bound, in both directions, so new partitions line
    -- up with the others (pg_partman's create_partition_time takes starts as given).
    SELECT array_agg(s ORDER BY s) INTO v_starts
    FROM (SELECT generate_series(v_anchor, since - v_interval, -v_interval) AS s
          UNION SELECT generate_series(v_anchor, until, v_interval)) AS candidates
    WHERE s + v_interval > since AND s < until
      AND NOT EXISTS (SELECT FROM pystatus.history_partitions AS p WHERE s >= p.starts AND s < p.ends);
    RETURN v_starts;
END;
$$;
COMMENT ON FUNCTION pystatus._missing_history_partitions(timestamptz, timestamptz) IS
    'Starts of the history partitions missing in [since, until), aligned with the existing ones; '
    'NULL when none is missing.';

-- search_path: not pinned, because it calls pg_partman (see above).
CREATE OR REPLACE FUNCTION pystatus.create_history_partitions(since timestamptz, until timestamptz)
RETURNS integer
LANGUAGE plpgsql
SET "TimeZone" = 'UTC'
AS $$
DECLARE
    v_starts timestamptz[] := pystatus._missing_history_partitions(since, until);
BEGIN
    IF v_starts IS NOT NULL THEN
        EXECUTE pg_catalog.format(
            'SELECT %I.create_partition_time(p_parent_table := $1, p_partition_times := $2)',
            pystatus._partman_schema())
            USING 'public.system_status_history', v_starts;
    END IF;
    RETURN coalesce(pg_catalog.cardinality(v_starts), 0);
END;
$$;
COMMENT ON FUNCTION pystatus.create_history_partitions(timestamptz, timestamptz) IS
    'Creates the missing history partitions covering [since, until), aligned with the existing '
    'ones; returns how many it created. For imports of older history (raise the retention first, '
    'or maintenance drops them again).';

------------------------------------------------------------------------------
-- The default partition: rows no partition covered
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus.history_default_rows()
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

-- search_path: not pinned, because it calls pg_partman (see above).
CREATE OR REPLACE FUNCTION pystatus.move_default_rows()
RETURNS bigint
LANGUAGE plpgsql
SET "TimeZone" = 'UTC'
AS $$
DECLARE
    v_moved bigint;
BEGIN
    EXECUTE pg_catalog.format('SELECT %I.partition_data_time(p_parent_table := %L, p_batch_count := %s)',
                              pystatus._partman_schema(), 'public.system_status_history',
                              greatest(pystatus.history_default_rows(), 1))
        INTO v_moved;
    RETURN v_moved;
END;
$$;
COMMENT ON FUNCTION pystatus.move_default_rows() IS
    'Remedy for rows in the default partition: creates the partitions they belong to and moves '
    'them there (pg_partman''s partition_data_time). Returns the number of rows moved.';

------------------------------------------------------------------------------
-- Maintenance
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus._history_partition_names()
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- Bare names: the partitions live in public.
    SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}')
    FROM pystatus.history_partitions AS p JOIN pg_class AS c ON c.oid = p.partition;
$$;
COMMENT ON FUNCTION pystatus._history_partition_names() IS
    'The history partitions'' names, for maintain() to report what it created and dropped.';

CREATE OR REPLACE FUNCTION pystatus._premade_range(OUT oldest timestamptz, OUT premade_until timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    oldest := (SELECT min(starts) FROM pystatus.history_partitions);
    EXECUTE format('SELECT now() + premake * partition_interval::interval FROM %I.part_config '
                   'WHERE parent_table = $1', pystatus._partman_schema())
        INTO premade_until USING 'public.system_status_history';
END;
$$;
COMMENT ON FUNCTION pystatus._premade_range() IS
    'From the oldest partition to the horizon pg_partman premakes to (now + premake partitions): '
    'where maintain() fills holes.';

CREATE OR REPLACE FUNCTION pystatus._maintenance_report(partitions_before text[], rows_moved bigint)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'created', (SELECT coalesce(jsonb_agg(p ORDER BY p), '[]') FROM unnest(after) AS p
                    WHERE p <> ALL (partitions_before)),
        'dropped', (SELECT coalesce(jsonb_agg(p ORDER BY p), '[]') FROM unnest(partitions_before) AS p
                    WHERE p <> ALL (after)),
        'moved_from_default', rows_moved)
    FROM pystatus._history_partition_names() AS after;
$$;
COMMENT ON FUNCTION pystatus._maintenance_report(text[], bigint) IS
    'What maintain() did: the partitions created and dropped since partitions_before, and the rows moved.';

-- search_path: not pinned, because it calls pg_partman (see above).
CREATE OR REPLACE FUNCTION pystatus.maintain()
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
    v_before := pystatus._history_partition_names();

    -- Rows in the default partition (maintenance was missed for longer than the
    -- premade partitions last) block creating the partitions they belong in:
    -- move them first.
    IF pystatus.history_default_rows() OPERATOR(pg_catalog.>) 0 THEN
        v_moved := pystatus.move_default_rows();
        RAISE WARNING 'moved % history rows out of the default partition', v_moved
            USING HINT = 'Maintenance did not run for a while: check its schedule.';
    END IF;

    EXECUTE pg_catalog.format('SELECT %I.run_maintenance(p_parent_table := %L, p_jobmon := false)',
                              pystatus._partman_schema(), 'public.system_status_history');

    -- pg_partman premakes after the newest partition only: also fill any hole
    -- up to the premade horizon (e.g. a partition dropped by hand).
    v_range := pystatus._premade_range();
    PERFORM pystatus.create_history_partitions(v_range.oldest, v_range.premade_until);
    RETURN pystatus._maintenance_report(v_before, v_moved);
END;
$$;
COMMENT ON FUNCTION pystatus.maintain() IS
    'Partition maintenance for system_status_history: moves rows out of the default partition, '
    'drops partitions past retention, premakes partitions ahead and fills holes. Run by pg_cron '
    '(or `pystatus maintain`); returns the partitions created and dropped and the rows moved.';

-- Answers from history: live status with staleness and the sweeper, the
-- timeline of segments, transitions, incidents, time-weighted uptime (from the
-- rollups of 60_rollups.sql), latency trends and task durations. The status
-- model they share is in 10_rules.sql.

SET LOCAL search_path = pg_catalog, pg_temp;

-- The answers that pystatus_reader may call (80_roles.sql) run as their owner
-- (SECURITY DEFINER): a reader needs no right on history or the rollups, and
-- reads them only through these functions.

------------------------------------------------------------------------------
-- Expectations
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus.set_expectations(
    service_name text,
    expected_interval interval,
    grace interval DEFAULT interval '60 seconds')
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
    -- Silence in past history is judged by the new expectations too: recompute its rollups.
    INSERT INTO pystatus.rollup_dirty (service_name, since)
    SELECT set_expectations.service_name, min(starts) FROM pystatus.history_partitions;
END;
$$;
COMMENT ON FUNCTION pystatus.set_expectations(text, interval, interval) IS
    'Sets how often a service heartbeats and the grace before silence makes it stale. Applies to '
    'its whole raw history (its rollups are recomputed); PS001/PS005 on bad input.';

------------------------------------------------------------------------------
-- Live status and the sweeper
------------------------------------------------------------------------------

CREATE OR REPLACE VIEW pystatus.live_status AS
SELECT
    s.service_name,
    CASE WHEN pystatus.goes_stale(s.status) AND now() > x.stale_after
         THEN 'stale' ELSE s.status END::varchar(16) AS effective_status,
    s.status AS reported_status,
    s.last_heartbeat,
    extract(epoch FROM now() - s.last_heartbeat)::double precision AS seconds_since,
    s.current_task,
    s.latency_ms,
    d.expected_interval,
    d.grace,
    x.stale_after
FROM public.system_status AS s
LEFT JOIN pystatus.service_expectations AS e ON e.service_name = s.service_name
-- The defaults for services without expectations, written once.
CROSS JOIN LATERAL (SELECT coalesce(e.expected_interval, interval '60 seconds') AS expected_interval,
                           coalesce(e.grace, interval '60 seconds') AS grace) AS d
CROSS JOIN LATERAL (SELECT s.last_heartbeat + d.expected_interval + d.grace AS stale_after) AS x;
COMMENT ON VIEW pystatus.live_status IS
    'Every service as a dashboard should show it: effective_status is stale once the service '
    'has been silent past stale_after (last_heartbeat + expected_interval + grace), even if it '
    'never said so. Reads system_status only: as fast as the dashboard''s own query.';

CREATE OR REPLACE FUNCTION pystatus.sweep()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_marked integer;
BEGIN
    -- The freshness test is on the target row (s), which PostgreSQL re-checks
    -- if a heartbeat updates it concurrently: a service that just spoke is
    -- never marked. The history row is dated at the deadline, not now.
    WITH silent AS (
        UPDATE public.system_status AS s
        SET status = 'stale', updated_at = clock_timestamp()
        FROM pystatus.live_status AS l
        WHERE l.service_name = s.service_name
          AND pystatus.goes_stale(s.status)
          AND s.last_heartbeat + l.expected_interval + l.grace < now()
        RETURNING s.service_name, s.last_heartbeat + l.expected_interval + l.grace AS deadline
    ), written AS (
        INSERT INTO public.system_status_history (heartbeat_timestamp, service_name, status)
        SELECT deadline, service_name, 'stale' FROM silent
        RETURNING 1
    )
    SELECT count(*) INTO v_marked FROM written;
    RETURN v_marked;
END;
$$;
COMMENT ON FUNCTION pystatus.sweep() IS
    'Marks services silent past their deadline as stale, in system_status and in history (dated '
    'at the deadline), so history holds the outage although the service never wrote again. '
    'Idempotent; the service''s next heartbeat ends it. Returns how many it marked.';

------------------------------------------------------------------------------
-- The timeline: history read as time-weighted segments
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus.history(
    service_name text,
    since timestamptz,
    until timestamptz DEFAULT now())
RETURNS SETOF public.system_status_history
LANGUAGE sql STABLE
SECURITY DEFINER
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

CREATE OR REPLACE FUNCTION pystatus.segments(service_name text, since timestamptz, until timestamptz)
RETURNS TABLE (service_name text, status text, starts timestamptz, ends timestamptz, continued boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH services AS (
        SELECT l.service_name::text AS service_name, l.expected_interval + l.grace AS patience
        FROM pystatus.live_status AS l
        WHERE segments.service_name IS NULL OR l.service_name = segments.service_name
    ), bounds AS (
        SELECT segments.since AS since, least(segments.until, now()) AS until
    ), beats AS (
        -- The row in force when the window opens (the newest before it; ties by id).
        SELECT sv.service_name, sv.patience, h.heartbeat_timestamp AS at, h.id, h.status::text
        FROM services AS sv
        CROSS JOIN bounds AS b
        CROSS JOIN LATERAL (
            SELECT max(h1.heartbeat_timestamp) AS at FROM public.system_status_history AS h1
            WHERE h1.service_name = sv.service_name AND h1.heartbeat_timestamp < b.since
        ) AS newest
        CROSS JOIN LATERAL (
            SELECT h2.heartbeat_timestamp, h2.id, h2.status FROM public.system_status_history AS h2
            WHERE h2.service_name = sv.service_name AND h2.heartbeat_timestamp = newest.at
            ORDER BY h2.id DESC LIMIT 1
        ) AS h
        UNION ALL
        -- One index range scan per service, never a scan of whole partitions
        -- (OFFSET 0 keeps the planner from flattening it into a hash join).
        SELECT sv.service_name, sv.patience, h.heartbeat_timestamp, h.id, h.status::text
        FROM services AS sv
        CROSS JOIN bounds AS b
        CROSS JOIN LATERAL (
            SELECT h3.heartbeat_timestamp, h3.id, h3.status FROM public.system_status_history AS h3
            WHERE h3.service_name = sv.service_name
              AND h3.heartbeat_timestamp >= b.since AND h3.heartbeat_timestamp < b.until
            OFFSET 0
        ) AS h
    ), ordered AS (
        SELECT beats.*,
               coalesce(lead(beats.at) OVER (PARTITION BY beats.service_name ORDER BY beats.at, beats.id),
                        b.until) AS next_at
        FROM beats CROSS JOIN bounds AS b
    ), pieces AS (
        SELECT o.service_name, o.status, o.at AS starts,
               CASE WHEN pystatus.goes_stale(o.status) THEN least(o.next_at, o.at + o.patience)
                    ELSE o.next_at END AS ends
        FROM ordered AS o
        UNION ALL
        SELECT o.service_name, 'stale', o.at + o.patience, o.next_at
        FROM ordered AS o
        WHERE pystatus.goes_stale(o.status) AND o.at + o.patience < o.next_at
    )
    SELECT p.service_name, p.status, greatest(p.starts, b.since), least(p.ends, b.until),
           p.starts < b.since
    FROM pieces AS p CROSS JOIN bounds AS b
    WHERE least(p.ends, b.until) > greatest(p.starts, b.since);
$$;
COMMENT ON FUNCTION pystatus.segments(text, timestamptz, timestamptz) IS
    'History as time-weighted segments within [since, least(until, now())): each row''s status '
    'until the next row, and stale from the deadline on when the service fell silent. '
    'continued marks a segment that began before since. service_name NULL: every service.';

CREATE OR REPLACE FUNCTION pystatus.transitions(
    service_name text, since timestamptz, until timestamptz DEFAULT now())
RETURNS TABLE (service_name text, from_status text, to_status text, at timestamptz)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH before AS (  -- each service's status just before the window
        SELECT b.service_name, b.status
        FROM pystatus.segments(transitions.service_name, transitions.since - interval '1 microsecond',
                               transitions.since) AS b
    ), changes AS (
        SELECT g.service_name, g.status, g.starts,
               coalesce(lag(g.status) OVER (PARTITION BY g.service_name ORDER BY g.starts),
                        (SELECT b.status FROM before AS b WHERE b.service_name = g.service_name))
                   AS previous
        FROM pystatus.segments(transitions.service_name, transitions.since, transitions.until) AS g
    )
    SELECT c.service_name, c.previous, c.status, c.starts
    FROM changes AS c
    WHERE c.status IS DISTINCT FROM c.previous
    ORDER BY c.service_name, c.starts;
$$;
COMMENT ON FUNCTION pystatus.transitions(text, timestamptz, timestamptz) IS
    'Every status change in [since, until): from (NULL for a service''s first heartbeat), to, at. '
    'Silence past the deadline shows as a change to stale. service_name NULL: every service.';

CREATE OR REPLACE FUNCTION pystatus.incidents(
    service_name text, since timestamptz, until timestamptz DEFAULT now())
RETURNS TABLE (service_name text, started timestamptz, ended timestamptz, duration interval, cause text)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH marked AS (
        SELECT g.*, pystatus.status_category(g.status) = 'down' AS is_down,
               lag(pystatus.status_category(g.status) = 'down', 1, false)
                   OVER (PARTITION BY g.service_name ORDER BY g.starts) AS was_down
        FROM pystatus.segments(incidents.service_name, incidents.since, incidents.until) AS g
    ), numbered AS (
        SELECT m.*, count(*) FILTER (WHERE m.is_down AND NOT m.was_down)
                        OVER (PARTITION BY m.service_name ORDER BY m.starts) AS incident
        FROM marked AS m
    ), grouped AS (
        SELECT n.service_name, min(n.starts) AS started, max(n.ends) AS last_end,
               (array_agg(CASE WHEN n.status = 'stale' THEN 'silence' ELSE 'reported down' END
                          ORDER BY n.starts))[1] AS cause
        FROM numbered AS n WHERE n.is_down
        GROUP BY n.service_name, n.incident
    )
    SELECT g.service_name, g.started,
           CASE WHEN incidents.until >= now() AND g.last_end >= now() THEN NULL ELSE g.last_end END,
           g.last_end - g.started, g.cause
    FROM grouped AS g
    ORDER BY g.service_name, g.started;
$$;
COMMENT ON FUNCTION pystatus.incidents(text, timestamptz, timestamptz) IS
    'Down intervals in [since, until), clipped to it: started, ended (NULL while still down), '
    'duration (so far, when open) and cause (reported down, or silence). "When did librarian '
    'stop responding?" is SELECT * FROM pystatus.incidents(''librarian'', now() - interval ''7 days'').';

------------------------------------------------------------------------------
-- Uptime
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus._compute_uptime(
    service_name text, since timestamptz, until timestamptz, use_rollups boolean)
RETURNS SETOF pystatus.uptime_report
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_origin constant timestamptz := pystatus._bucket_origin();
    v_until timestamptz := greatest(least(_compute_uptime.until, now()), _compute_uptime.since);
    v_hours_from timestamptz;
    v_hours_to timestamptz;
    v_days_from timestamptz;
    v_days_to timestamptz;
BEGIN
    IF _compute_uptime.since IS NULL OR _compute_uptime.until IS NULL OR NOT isfinite(_compute_uptime.since) OR NOT isfinite(_compute_uptime.until) THEN
        RAISE EXCEPTION 'invalid window [%, %): both ends must be finite', _compute_uptime.since, _compute_uptime.until
            USING ERRCODE = 'PS005';
    END IF;
    -- Whole rolled-up hours inside the window, and whole days inside those.
    v_hours_from := date_bin('1 hour', _compute_uptime.since, v_origin);
    IF v_hours_from < _compute_uptime.since THEN
        v_hours_from := v_hours_from + interval '1 hour';
    END IF;
    -- Rollups hold hours before rolled_until, except where late rows wait for
    -- the next refresh: those are read from raw history until then.
    v_hours_to := least(date_bin('1 hour', v_until, v_origin),
                        (SELECT rolled_until FROM pystatus.rollup_state),
                        (SELECT date_bin('1 hour', min(d.since), v_origin) FROM pystatus.rollup_dirty AS d
                         WHERE _compute_uptime.service_name IS NULL OR d.service_name = _compute_uptime.service_name));
    IF NOT _compute_uptime.use_rollups OR v_hours_from >= v_hours_to THEN
        v_hours_from := v_until;  -- no rollups: all raw
        v_hours_to := v_until;
    END IF;
    v_days_from := date_bin('1 day', v_hours_from - interval '1 microsecond', v_origin) + interval '1 day';
    v_days_to := date_bin('1 day', v_hours_to, v_origin);
    IF v_days_from >= v_days_to THEN
        v_days_from := v_hours_to;
        v_days_to := v_hours_to;
    END IF;

    RETURN QUERY
    WITH services AS (
        SELECT l.service_name::text AS service_name FROM pystatus.live_status AS l
        WHERE _compute_uptime.service_name IS NULL
        UNION ALL
        SELECT _compute_uptime.service_name WHERE _compute_uptime.service_name IS NOT NULL
    ), raw AS (
        SELECT g.service_name, pystatus.status_category(g.status) AS category,
               pystatus._microseconds(g.ends - g.starts) AS us
        FROM pystatus.segments(_compute_uptime.service_name, _compute_uptime.since, v_hours_from) AS g
        UNION ALL
        SELECT g.service_name, pystatus.status_category(g.status),
               pystatus._microseconds(g.ends - g.starts)
        FROM pystatus.segments(_compute_uptime.service_name, v_hours_to, v_until) AS g
    ), rolled AS (
        SELECT r.service_name::text AS service_name, r.up_us, r.down_us, r.maintenance_us
        FROM pystatus.rollup_hourly AS r
        WHERE (_compute_uptime.service_name IS NULL OR r.service_name = _compute_uptime.service_name)
          AND ((r.bucket >= v_hours_from AND r.bucket < v_days_from)
               OR (r.bucket >= v_days_to AND r.bucket < v_hours_to))
        UNION ALL
        SELECT r.service_name::text, r.up_us, r.down_us, r.maintenance_us
        FROM pystatus.rollup_daily AS r
        WHERE (_compute_uptime.service_name IS NULL OR r.service_name = _compute_uptime.service_name)
          AND r.bucket >= v_days_from AND r.bucket < v_days_to
        UNION ALL
        SELECT raw.service_name,
               CASE WHEN raw.category = 'up' THEN raw.us ELSE 0 END,
               CASE WHEN raw.category = 'down' THEN raw.us ELSE 0 END,
               CASE WHEN raw.category = 'maintenance' THEN raw.us ELSE 0 END
        FROM raw
    ), totals AS (
        SELECT s.service_name,
               coalesce(sum(r.up_us), 0) AS up_us,
               coalesce(sum(r.down_us), 0) AS down_us,
               coalesce(sum(r.maintenance_us), 0) AS maintenance_us
        FROM services AS s LEFT JOIN rolled AS r ON r.service_name = s.service_name
        GROUP BY s.service_name
    )
    SELECT t.service_name, _compute_uptime.since, v_until,
           round(t.up_us / 1e6, 6), round(t.down_us / 1e6, 6), round(t.maintenance_us / 1e6, 6),
           round((pystatus._microseconds(v_until - _compute_uptime.since) - t.up_us - t.down_us - t.maintenance_us) / 1e6, 6),
           t.up_us::double precision / nullif(t.up_us + t.down_us, 0)
    FROM totals AS t
    ORDER BY t.service_name;
END;
$$;
COMMENT ON FUNCTION pystatus._compute_uptime(text, timestamptz, timestamptz, boolean) IS
    'Uptime over [since, least(until, now())), from rollups for the whole hours and days they '
    'hold and from raw history for the rest (use_rollups), or from raw history only.';

CREATE OR REPLACE FUNCTION pystatus.uptime(service_name text, since timestamptz, until timestamptz DEFAULT now())
RETURNS SETOF pystatus.uptime_report
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM pystatus._compute_uptime(uptime.service_name, uptime.since, uptime.until, true);
$$;
COMMENT ON FUNCTION pystatus.uptime(text, timestamptz, timestamptz) IS
    'Time-weighted uptime of a service (NULL: every service) over [since, until), fast from rollups.';

CREATE OR REPLACE FUNCTION pystatus.uptime_raw(service_name text, since timestamptz, until timestamptz DEFAULT now())
RETURNS SETOF pystatus.uptime_report
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM pystatus._compute_uptime(uptime_raw.service_name, uptime_raw.since, uptime_raw.until, false);
$$;
COMMENT ON FUNCTION pystatus.uptime_raw(text, timestamptz, timestamptz) IS
    'pystatus.uptime() computed from raw history only: the reference the rollups must equal.';

CREATE OR REPLACE FUNCTION pystatus.uptime_month(service_name text, month date, time_zone text DEFAULT 'UTC')
RETURNS SETOF pystatus.uptime_report
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM pystatus.uptime(
        uptime_month.service_name,
        date_trunc('month', uptime_month.month)::timestamp AT TIME ZONE uptime_month.time_zone,
        (date_trunc('month', uptime_month.month) + interval '1 month')::timestamp AT TIME ZONE uptime_month.time_zone);
$$;
COMMENT ON FUNCTION pystatus.uptime_month(text, date, text) IS
    'Uptime over the calendar month holding month, in time_zone (default UTC); the current '
    'month counts up to now.';

CREATE OR REPLACE FUNCTION pystatus.daily_uptime(service_name text, days integer DEFAULT 30)
RETURNS TABLE (day date, up_seconds numeric, down_seconds numeric, maintenance_seconds numeric,
               no_data_seconds numeric, uptime double precision)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_origin constant timestamptz := pystatus._bucket_origin();
    v_today timestamptz := date_bin('1 day', now(), v_origin);
    v_first timestamptz := v_today - (daily_uptime.days - 1) * interval '1 day';
    -- Days the daily rollup holds: before rolled_until and before any late rows
    -- still waiting for a refresh.
    v_rolled timestamptz := date_bin('1 day', least(
        (SELECT rolled_until FROM pystatus.rollup_state),
        (SELECT min(d.since) FROM pystatus.rollup_dirty AS d WHERE d.service_name = daily_uptime.service_name)),
        v_origin);
    v_day timestamptz;
BEGIN
    IF daily_uptime.days IS NULL OR daily_uptime.days < 1 OR daily_uptime.days > 400 THEN
        RAISE EXCEPTION 'invalid days %: must be 1 to 400', daily_uptime.days USING ERRCODE = 'PS005';
    END IF;
    -- Days the daily rollup holds.
    RETURN QUERY
    SELECT (d AT TIME ZONE 'UTC')::date,
           round(coalesce(r.up_us, 0) / 1e6, 6), round(coalesce(r.down_us, 0) / 1e6, 6),
           round(coalesce(r.maintenance_us, 0) / 1e6, 6),
           round((86400000000 - coalesce(r.up_us + r.down_us + r.maintenance_us, 0)) / 1e6, 6),
           r.up_us::double precision / nullif(r.up_us + r.down_us, 0)
    FROM generate_series(v_first, least(v_rolled, v_today + interval '1 day') - interval '1 day',
                         interval '1 day') AS d
    LEFT JOIN pystatus.rollup_daily AS r
           ON r.service_name = daily_uptime.service_name AND r.bucket = d
    ORDER BY d;
    -- The day or two not rolled up yet (today, so far).
    v_day := greatest(v_rolled, v_first);
    WHILE v_day <= v_today LOOP
        RETURN QUERY
        SELECT (v_day AT TIME ZONE 'UTC')::date, u.up_seconds, u.down_seconds, u.maintenance_seconds,
               u.no_data_seconds, u.uptime
        FROM pystatus.uptime(daily_uptime.service_name, v_day, v_day + interval '1 day') AS u;
        v_day := v_day + interval '1 day';
    END LOOP;
END;
$$;
COMMENT ON FUNCTION pystatus.daily_uptime(text, integer) IS
    'One service''s uptime per UTC day over the last days days (today so far included): '
    'the bars of a status page. Read from the daily rollup, so it stays fast for 400 days.';

CREATE OR REPLACE FUNCTION pystatus.latency_hourly(service_name text, since timestamptz, until timestamptz DEFAULT now())
RETURNS TABLE (hour timestamptz, samples integer, p50 double precision, p95 double precision,
               max double precision)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.bucket, r.latency_count, r.latency_p50, r.latency_p95, r.latency_max
    FROM pystatus.rollup_hourly AS r
    WHERE r.service_name = latency_hourly.service_name
      AND r.bucket >= latency_hourly.since AND r.bucket < latency_hourly.until
      AND r.latency_count > 0
    ORDER BY r.bucket;
$$;
COMMENT ON FUNCTION pystatus.latency_hourly(text, timestamptz, timestamptz) IS
    'The latency measure per hour (samples, p50, p95, max) from the hourly rollup: the series '
    'of a trend chart. Hours not rolled up yet (the last hour or so) are not included.';

------------------------------------------------------------------------------
-- Is it getting slower? Latency trend and task durations
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus.trend(
    service_name text,
    recent interval DEFAULT interval '1 day',
    baseline interval DEFAULT interval '7 days',
    threshold double precision DEFAULT 0.2)
RETURNS TABLE (
    service_name text,
    recent_samples bigint, recent_p50 double precision, recent_p95 double precision,
    baseline_samples bigint, baseline_p50 double precision, baseline_p95 double precision,
    p50_change double precision, p95_change double precision, verdict text)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH samples AS (
        SELECT h.latency_ms, h.heartbeat_timestamp >= now() - trend.recent AS is_recent
        FROM public.system_status_history AS h
        WHERE h.service_name = trend.service_name AND h.latency_ms IS NOT NULL
          AND h.heartbeat_timestamp >= now() - trend.recent - trend.baseline
          AND h.heartbeat_timestamp < now()
    ), stats AS (
        SELECT count(*) FILTER (WHERE is_recent) AS rn,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE is_recent) AS r50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE is_recent) AS r95,
               count(*) FILTER (WHERE NOT is_recent) AS bn,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE NOT is_recent) AS b50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE NOT is_recent) AS b95
        FROM samples
    ), changes AS (
        SELECT stats.*, r50 / nullif(b50, 0) - 1 AS c50, r95 / nullif(b95, 0) - 1 AS c95 FROM stats
    )
    SELECT trend.service_name, rn, r50, r95, bn, b50, b95, c50, c95,
           CASE WHEN rn < 10 OR bn < 10 THEN 'not enough data'
                WHEN c50 > trend.threshold OR c95 > trend.threshold THEN 'slower'
                WHEN c50 < -trend.threshold AND c95 < -trend.threshold THEN 'faster'
                ELSE 'steady' END
    FROM changes;
$$;
COMMENT ON FUNCTION pystatus.trend(text, interval, interval, double precision) IS
    'Is the service getting slower? Compares the latency measure''s median and 95th percentile '
    'over the recent window with the baseline window just before it: slower when either rose '
    'by more than threshold (default 20 %), faster when both fell by more, otherwise steady; '
    'not enough data with fewer than 10 samples on either side.';

CREATE OR REPLACE FUNCTION pystatus.task_durations(
    service_name text, since timestamptz, until timestamptz DEFAULT now())
RETURNS TABLE (service_name text, current_task text, started timestamptz, ended timestamptz, duration interval)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH beats AS (
        SELECT h.heartbeat_timestamp AS at, h.current_task,
               h.current_task IS DISTINCT FROM lag(h.current_task) OVER (ORDER BY h.heartbeat_timestamp, h.id)
                   AS changed
        FROM public.system_status_history AS h
        WHERE h.service_name = task_durations.service_name
          AND h.heartbeat_timestamp >= task_durations.since
          AND h.heartbeat_timestamp < least(task_durations.until, now())
    ), runs AS (
        SELECT b.current_task, b.at AS started, lead(b.at) OVER (ORDER BY b.at) AS ended
        FROM beats AS b WHERE b.changed
    )
    SELECT task_durations.service_name, r.current_task, r.started, r.ended,
           coalesce(r.ended, least(task_durations.until, now())) - r.started
    FROM runs AS r
    WHERE r.current_task IS NOT NULL
    ORDER BY r.started;
$$;
COMMENT ON FUNCTION pystatus.task_durations(text, timestamptz, timestamptz) IS
    'How long each current_task lasted: from the first heartbeat reporting it to the first '
    'reporting something else (ended NULL while it runs; duration so far).';


-- Rollups: per service per UTC hour and day, computed from raw history by the
-- same segments() as every answer, refreshed every minute, kept longer than raw
-- history. uptime() reads them for whole hours and days (50_answers.sql).

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION pystatus._mark_rollups_dirty()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO pystatus.rollup_dirty (service_name, since) VALUES (NEW.service_name, NEW.heartbeat_timestamp);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION pystatus._mark_rollups_dirty() IS
    'Trigger function: records that a late history row needs its rollups recomputed.';

-- Heartbeats are dated after their transaction starts, so this WHEN clause
-- only fires for backfills. It costs a heartbeat no function call:
-- _rollup_delay() is a constant, folded when the condition is prepared.
CREATE OR REPLACE TRIGGER system_status_history_late_rows
    AFTER INSERT ON public.system_status_history
    FOR EACH ROW WHEN (NEW.heartbeat_timestamp < NEW.created_at - pystatus._rollup_delay())
    EXECUTE FUNCTION pystatus._mark_rollups_dirty();
COMMENT ON TRIGGER system_status_history_late_rows ON public.system_status_history IS
    'Rows dated further back than _rollup_delay() when written (backfills) mark rollups dirty.';

CREATE OR REPLACE FUNCTION pystatus._rollup_buckets(
    service_name text, since timestamptz, until timestamptz, width interval)
RETURNS SETOF pystatus.rollup_hourly
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH split AS (
        SELECT g.service_name, b.bucket, pystatus.status_category(g.status) AS category,
               pystatus._microseconds(least(g.ends, b.bucket + _rollup_buckets.width)
                                     - greatest(g.starts, b.bucket)) AS us
        FROM pystatus.segments(_rollup_buckets.service_name, _rollup_buckets.since, _rollup_buckets.until) AS g
        CROSS JOIN LATERAL generate_series(
            date_bin(_rollup_buckets.width, g.starts, pystatus._bucket_origin()),
            g.ends - interval '1 microsecond', _rollup_buckets.width) AS b(bucket)
    ), times AS (
        SELECT s.service_name, s.bucket,
               coalesce(sum(s.us) FILTER (WHERE s.category = 'up'), 0) AS up_us,
               coalesce(sum(s.us) FILTER (WHERE s.category = 'down'), 0) AS down_us,
               coalesce(sum(s.us) FILTER (WHERE s.category = 'maintenance'), 0) AS maintenance_us
        FROM split AS s GROUP BY s.service_name, s.bucket
    ), beats AS (
        SELECT sv.service_name::text AS service_name,
               date_bin(_rollup_buckets.width, h.heartbeat_timestamp, pystatus._bucket_origin()) AS bucket,
               count(*) FILTER (WHERE h.status <> 'stale') AS heartbeats,
               count(h.latency_ms) AS latency_count,
               avg(h.latency_ms) AS latency_avg,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY h.latency_ms) AS latency_p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY h.latency_ms) AS latency_p95,
               max(h.latency_ms) AS latency_max
        FROM public.system_status AS sv
        CROSS JOIN LATERAL (  -- one index range scan per service (OFFSET 0: not flattened)
            SELECT h1.heartbeat_timestamp, h1.status, h1.latency_ms
            FROM public.system_status_history AS h1
            WHERE h1.service_name = sv.service_name
              AND h1.heartbeat_timestamp >= _rollup_buckets.since
              AND h1.heartbeat_timestamp < _rollup_buckets.until
            OFFSET 0
        ) AS h
        WHERE _rollup_buckets.service_name IS NULL OR sv.service_name = _rollup_buckets.service_name
        GROUP BY 1, 2
    )
    SELECT coalesce(t.service_name, b.service_name), coalesce(t.bucket, b.bucket),
           coalesce(t.up_us, 0), coalesce(t.down_us, 0), coalesce(t.maintenance_us, 0),
           coalesce(b.heartbeats, 0)::integer, coalesce(b.latency_count, 0)::integer,
           b.latency_avg, b.latency_p50, b.latency_p95, b.latency_max
    FROM times AS t
    FULL JOIN beats AS b ON b.service_name = t.service_name AND b.bucket = t.bucket;
$$;
COMMENT ON FUNCTION pystatus._rollup_buckets(text, timestamptz, timestamptz, interval) IS
    'Computes rollup rows from raw history for [since, until) in buckets of width (1 hour, 1 day), '
    'aligned to UTC. service_name NULL: every service.';

CREATE OR REPLACE FUNCTION pystatus._roll_up(service_name text, since timestamptz, until timestamptz)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_day_from timestamptz := date_bin('1 day', _roll_up.since, pystatus._bucket_origin());
    v_day_to timestamptz := date_bin('1 day', _roll_up.until, pystatus._bucket_origin());
    v_rows integer;
BEGIN
    DELETE FROM pystatus.rollup_hourly
    WHERE (_roll_up.service_name IS NULL OR service_name = _roll_up.service_name) AND bucket >= _roll_up.since AND bucket < _roll_up.until;
    INSERT INTO pystatus.rollup_hourly
    SELECT * FROM pystatus._rollup_buckets(_roll_up.service_name, _roll_up.since, _roll_up.until, interval '1 hour');
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    -- Whole days that the hours touched and that have ended by until: times and
    -- counts add up from the hours; latency statistics come from the day's raw rows.
    IF v_day_from < v_day_to THEN
        DELETE FROM pystatus.rollup_daily
        WHERE (_roll_up.service_name IS NULL OR service_name = _roll_up.service_name)
          AND bucket >= v_day_from AND bucket < v_day_to;
        INSERT INTO pystatus.rollup_daily
        SELECT d.service_name, d.bucket, d.up_us, d.down_us, d.maintenance_us, d.heartbeats,
               coalesce(l.latency_count, 0), l.latency_avg, l.latency_p50, l.latency_p95, l.latency_max
        FROM (
            SELECT r.service_name, date_bin('1 day', r.bucket, pystatus._bucket_origin()) AS bucket,
                   sum(r.up_us) AS up_us, sum(r.down_us) AS down_us,
                   sum(r.maintenance_us) AS maintenance_us, sum(r.heartbeats) AS heartbeats
            FROM pystatus.rollup_hourly AS r
            WHERE (_roll_up.service_name IS NULL OR r.service_name = _roll_up.service_name)
              AND r.bucket >= v_day_from AND r.bucket < v_day_to
            GROUP BY 1, 2
        ) AS d
        LEFT JOIN (
            SELECT h.service_name,
                   date_bin('1 day', h.heartbeat_timestamp, pystatus._bucket_origin()) AS bucket,
                   count(*) AS latency_count, avg(h.latency_ms) AS latency_avg,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY h.latency_ms) AS latency_p50,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY h.latency_ms) AS latency_p95,
                   max(h.latency_ms) AS latency_max
            FROM public.system_status AS sv
            CROSS JOIN LATERAL (
                SELECT h1.service_name, h1.heartbeat_timestamp, h1.latency_ms
                FROM public.system_status_history AS h1
                WHERE h1.service_name = sv.service_name
                  AND h1.heartbeat_timestamp >= v_day_from AND h1.heartbeat_timestamp < v_day_to
                  AND h1.latency_ms IS NOT NULL
                OFFSET 0
            ) AS h
            WHERE _roll_up.service_name IS NULL OR sv.service_name = _roll_up.service_name
            GROUP BY 1, 2
        ) AS l ON l.service_name = d.service_name AND l.bucket = d.bucket;
    END IF;
    RETURN v_rows;
END;
$$;
COMMENT ON FUNCTION pystatus._roll_up(text, timestamptz, timestamptz) IS
    'Recomputes the hourly rollups in [since, until) and the daily ones of the days that ended in '
    'it, for one service or (NULL) all. Returns the hourly rows written.';

CREATE OR REPLACE FUNCTION pystatus.refresh_rollups()
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_state pystatus.rollup_state;
    v_to timestamptz := date_bin('1 hour', now() - pystatus._rollup_delay(), pystatus._bucket_origin());
    v_dirty record;
    v_recomputed integer := 0;
    v_new integer := 0;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('pystatus.refresh_rollups')) THEN
        RETURN jsonb_build_object('skipped', 'another refresh is running');
    END IF;
    SELECT * INTO v_state FROM pystatus.rollup_state FOR UPDATE;
    FOR v_dirty IN
        WITH taken AS (DELETE FROM pystatus.rollup_dirty RETURNING service_name, since)
        SELECT service_name, min(since) AS since FROM taken GROUP BY service_name
    LOOP
        IF v_dirty.since < v_state.rolled_until THEN
            v_recomputed := v_recomputed + pystatus._roll_up(
                v_dirty.service_name,
                date_bin('1 hour', v_dirty.since, pystatus._bucket_origin()),
                v_state.rolled_until);
        END IF;
    END LOOP;
    IF v_to > v_state.rolled_until THEN
        v_new := pystatus._roll_up(NULL, v_state.rolled_until, v_to);
        UPDATE pystatus.rollup_state SET rolled_until = v_to;
        DELETE FROM pystatus.rollup_hourly WHERE bucket < now() - v_state.retention;
        DELETE FROM pystatus.rollup_daily WHERE bucket < now() - v_state.retention;
    END IF;
    RETURN jsonb_build_object('hours_added', v_new, 'hours_recomputed', v_recomputed,
                              'rolled_until', greatest(v_to, v_state.rolled_until));
END;
$$;
COMMENT ON FUNCTION pystatus.refresh_rollups() IS
    'Brings the rollups up to date: recomputes services with late rows, adds the hours that '
    'ended, drops rollups past their retention. Run every minute (pg_cron job pystatus-rollups).';

CREATE OR REPLACE FUNCTION pystatus.set_rollup_retention(retention interval)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF retention IS NULL OR retention <= interval '0' THEN
        RAISE EXCEPTION 'invalid rollup retention %: must be positive', retention USING ERRCODE = 'PS005';
    END IF;
    UPDATE pystatus.rollup_state SET retention = set_rollup_retention.retention;
END;
$$;
COMMENT ON FUNCTION pystatus.set_rollup_retention(interval) IS
    'Changes how long hourly and daily rollups are kept (default 400 days).';


-- Scheduling: the pg_cron jobs that run maintenance, the sweeper and the
-- rollups. Three installations:
--   pg_cron in this database        `pystatus migrate` schedules the jobs;
--   pg_cron in another database     (cron.database_name, usually 'postgres'):
--                                   `pystatus schedule --cron-dsn ...` registers
--                                   them there with cron.schedule_in_database;
--   no pg_cron                      `pystatus maintain` from any scheduler.

SET LOCAL search_path = pg_catalog, pg_temp;

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

CREATE OR REPLACE FUNCTION pystatus.maintenance_scheduler()
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

CREATE OR REPLACE FUNCTION pystatus.schedule_maintenance()
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

-- Re-applied with every change of these files: jobs added or changed by a new
-- version are scheduled by the same migrate that brings them.
SELECT pystatus.schedule_maintenance();

-- The installation's own health: check() for monitoring (ok false, with the
-- remedy, for each problem) and setup_report() for the DBA after a migrate.
-- The roles' part, _check_roles(), is beside the roles in 90_roles.sql.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION pystatus._check_storage()
RETURNS TABLE (item text, ok boolean, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema name;
    v_interval interval;
    v_until timestamptz := (SELECT max(ends) FROM pystatus.history_partitions);
    v_default bigint := pystatus.history_default_rows();
    v_retention interval := pystatus.history_retention();
    v_rolled timestamptz := (SELECT rolled_until FROM pystatus.rollup_state);
    v_unswept bigint;
    v_job record;
BEGIN
    v_schema := pystatus._partman_schema();  -- raises PS010 when pg_partman is missing
    item := 'pg_partman'; ok := true;
    detail := (SELECT extversion FROM pg_extension WHERE extname = 'pg_partman') || ' in schema ' || v_schema;
    RETURN NEXT;

    EXECUTE format('SELECT partition_interval::interval FROM %I.part_config WHERE parent_table = $1', v_schema)
        INTO v_interval USING 'public.system_status_history';
    item := 'partitions ahead';
    ok := v_until >= now() + v_interval;
    detail := 'premade until ' || v_until || CASE WHEN ok THEN '' ELSE ': run pystatus maintain' END;
    RETURN NEXT;

    item := 'default partition'; ok := v_default = 0;
    detail := v_default || ' rows' || CASE WHEN ok THEN '' ELSE ': run SELECT pystatus.move_default_rows()' END;
    RETURN NEXT;

    item := 'retention'; ok := v_retention IS NOT NULL;
    detail := coalesce(v_retention::text, 'none: history is kept forever');
    RETURN NEXT;

    item := 'rollups'; ok := v_rolled >= date_bin('1 hour', now() - pystatus._rollup_delay(), pystatus._bucket_origin()) - interval '1 hour';
    detail := 'rolled up until ' || v_rolled || CASE WHEN ok THEN '' ELSE ': is the rollups job running?' END;
    RETURN NEXT;

    SELECT count(*) INTO v_unswept FROM pystatus.live_status
    WHERE effective_status = 'stale' AND reported_status <> 'stale' AND stale_after < now() - interval '5 minutes';
    item := 'sweeper'; ok := v_unswept = 0;
    detail := CASE WHEN ok THEN 'no silent service left unmarked'
                   ELSE v_unswept || ' silent services not marked stale for 5 minutes: is the sweep job running?' END;
    RETURN NEXT;

    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        FOR v_job IN EXECUTE $q$
            SELECT m.job_name, j.active, d.status, d.end_time, d.return_message
            FROM pystatus.maintenance_jobs() AS m
            LEFT JOIN cron.job AS j ON j.jobname = m.job_name
            LEFT JOIN LATERAL (SELECT r.status, r.end_time, r.return_message FROM cron.job_run_details AS r
                               WHERE r.jobid = j.jobid AND r.status IN ('succeeded', 'failed')
                               ORDER BY r.runid DESC LIMIT 1) AS d ON true
            ORDER BY m.job_name$q$
        LOOP
            item := 'job ' || v_job.job_name;
            ok := v_job.active IS TRUE AND coalesce(v_job.status, 'succeeded') = 'succeeded';
            detail := CASE WHEN v_job.active IS NULL THEN 'not scheduled: run pystatus schedule'
                           WHEN NOT v_job.active THEN 'scheduled but inactive'
                           WHEN v_job.status IS NULL THEN 'scheduled, not run yet'
                           ELSE 'last run ' || v_job.status || ' at ' || v_job.end_time
                                || coalesce(': ' || nullif(v_job.return_message, ''), '') END;
            RETURN NEXT;
        END LOOP;
    ELSE
        item := 'jobs'; ok := true;
        detail := pystatus.maintenance_scheduler()
                  || ': check them there (pystatus check --cron-dsn ...) or in your scheduler';
        RETURN NEXT;
    END IF;
END;
$$;
COMMENT ON FUNCTION pystatus._check_storage() IS
    'pystatus.check() without the roles: pg_partman, partitions premade ahead, default partition '
    'empty, retention, rollups and sweeper keeping up, pg_cron jobs scheduled and their last runs.';

CREATE OR REPLACE FUNCTION pystatus.check()
RETURNS TABLE (item text, ok boolean, detail text)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT * FROM pystatus._check_storage();
    RETURN QUERY SELECT * FROM pystatus._check_roles();
END;
$$;
COMMENT ON FUNCTION pystatus.check() IS
    'The installation''s health: pg_partman, partitions premade ahead, default partition empty, '
    'retention, rollups and sweeper keeping up, pg_cron jobs scheduled and their last runs, roles. '
    'ok is false for each problem, with what to do in detail.';

CREATE OR REPLACE FUNCTION pystatus.setup_report(OUT item text, OUT value text, OUT todo text)
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
             || ' in schema ' || pystatus._partman_schema();
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

    -- The roles, and whom to grant them to.
    RETURN QUERY
    SELECT r.item, r.detail,
           CASE WHEN NOT r.ok THEN r.detail
                WHEN NOT EXISTS (SELECT FROM pg_auth_members WHERE roleid = to_regrole(substr(r.item, 6)))
                THEN format('grant %s to the logins of %s: GRANT %1$s TO <login>',
                            substr(r.item, 6),
                            CASE r.item WHEN 'role pystatus_writer' THEN 'services'
                                        ELSE 'dashboards and monitoring' END) END
    FROM pystatus._check_roles() AS r
    WHERE r.item LIKE 'role %';
END;
$$;
COMMENT ON FUNCTION pystatus.setup_report() IS
    'The installation at a glance (pg_partman, partitions, retention, default partition, '
    'maintenance scheduler, roles), with what is left for the DBA to do in todo.';

-- Roles and rights: pystatus_writer may only heartbeat, pystatus_reader may
-- only read what dashboards and the CLI read; the owner (the role that
-- migrates) keeps the rest. Optionally, each login may heartbeat only for its
-- own service names. Last of the files, because it grants rights on what the
-- others define.

SET LOCAL search_path = pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- The roles belong to the whole cluster: made by the first database migrated,
-- reused by the others, and never dropped by a rollback (another database may
-- still grant them). Grants, below, are this database's own.
------------------------------------------------------------------------------

DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['pystatus_writer', 'pystatus_reader'] LOOP
        IF to_regrole(v_role) IS NULL THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
            EXECUTE format('COMMENT ON ROLE %I IS %L', v_role, CASE v_role
                WHEN 'pystatus_writer' THEN
                    'pystatus: may record heartbeats (pystatus.heartbeat, pystatus.heartbeat_many), nothing else. '
                    'Grant it to the logins services use.'
                ELSE
                    'pystatus: may read current status and the answers from history (the functions dashboards '
                    'and the CLI call), nothing else. Grant it to dashboards and monitoring.' END);
        END IF;
    END LOOP;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'role % does not exist and % cannot create it: %', v_role, current_user, SQLERRM
        USING ERRCODE = 'PS010',
              HINT = 'As a superuser (or a role with CREATEROLE): '
                     'CREATE ROLE pystatus_writer NOLOGIN; CREATE ROLE pystatus_reader NOLOGIN; then migrate again.';
END;
$$;

------------------------------------------------------------------------------
-- The heartbeat functions and the copy trigger run with the owner's rights,
-- and any trigger on the status tables runs with them too. So the tables and
-- pg_partman's schema must belong to this role or to a superuser, and no other
-- role may add triggers to the tables.
------------------------------------------------------------------------------

DO $$
DECLARE
    v_object text;
    v_grantee text;
BEGIN
    SELECT string_agg(o.name || ' belongs to ' || r.rolname, ', ') INTO v_object
    FROM (VALUES ('public.system_status', (SELECT relowner FROM pg_class WHERE oid = 'public.system_status'::regclass)),
                 ('public.system_status_history',
                  (SELECT relowner FROM pg_class WHERE oid = 'public.system_status_history'::regclass)),
                 ('schema ' || pystatus._partman_schema(),
                  (SELECT nspowner FROM pg_namespace WHERE nspname = pystatus._partman_schema()))) AS o(name, owner)
    JOIN pg_roles AS r ON r.oid = o.owner
    WHERE NOT (r.rolsuper OR r.rolname = current_user);
    IF v_object IS NOT NULL THEN
        RAISE EXCEPTION '% (not to %, the role migrating, nor to a superuser)', v_object, current_user
            USING HINT = 'Its owner could add triggers or replace functions that would run with the rights of '
                         'the heartbeat functions. As a superuser: ALTER ... OWNER TO ' || current_user || '.';
    END IF;
    FOR v_object, v_grantee IN
        SELECT DISTINCT t.oid::regclass::text, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.rolname) END
        FROM pg_class AS t
        CROSS JOIN LATERAL aclexplode(t.relacl) AS a
        LEFT JOIN pg_roles AS g ON g.oid = a.grantee
        WHERE t.oid IN ('public.system_status'::regclass, 'public.system_status_history'::regclass)
          AND a.privilege_type = 'TRIGGER' AND a.grantee <> t.relowner
    LOOP
        EXECUTE format('REVOKE TRIGGER ON %s FROM %s', v_object, v_grantee);
        RAISE NOTICE 'revoked TRIGGER on % from %: triggers there run with the owner''s rights', v_object, v_grantee;
    END LOOP;
END;
$$;

------------------------------------------------------------------------------
-- Which login may report which services (opt-in; the table is in 20_tables.sql)
------------------------------------------------------------------------------

-- Asked by the copy trigger, which runs with the rights of whoever writes
-- system_status: it runs as its owner, so writers need no right on the table.
-- session_user: the login that connected, whatever role it has set since.
CREATE OR REPLACE FUNCTION pystatus._may_report(service_name text)
RETURNS boolean
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- PL/pgSQL keeps its plans for the session; an SQL function that cannot be
-- inlined is planned again in every transaction (restricted heartbeats ran
-- at 0.70x with it).
AS $$
BEGIN
    RETURN EXISTS (SELECT FROM pystatus.service_logins AS l
                   WHERE l.login = session_user AND _may_report.service_name LIKE l.like_pattern)
        OR pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'pystatus'), 'MEMBER');
END;
$$;
COMMENT ON FUNCTION pystatus._may_report(text) IS
    'Whether the connected login may write a status for this service under pystatus.service_logins '
    '(its own allowances; the owner and superusers always may).';

-- Whether logins are restricted is kept where the copy trigger reads it for
-- free: as the body of a constant function, which PostgreSQL inlines into its
-- plans (replacing it invalidates them). An EXISTS on the table cost every
-- heartbeat about 6 % more instructions, restricted or not. Defined here as
-- false, and set from the table at once (and by a trigger on every change).
CREATE OR REPLACE FUNCTION pystatus._logins_restricted()
RETURNS boolean
LANGUAGE sql STABLE
RETURN false;
COMMENT ON FUNCTION pystatus._logins_restricted() IS
    'Whether pystatus.service_logins has rows; rewritten by _sync_logins_restricted().';

CREATE OR REPLACE FUNCTION pystatus._sync_logins_restricted()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_restricted boolean;
BEGIN
    -- One change at a time: two transactions replacing the function at once
    -- would fail with "tuple concurrently updated".
    PERFORM pg_advisory_xact_lock(hashtext('pystatus.service_logins'));
    v_restricted := EXISTS (SELECT FROM pystatus.service_logins);
    IF v_restricted IS DISTINCT FROM pystatus._logins_restricted() THEN
        EXECUTE format('CREATE OR REPLACE FUNCTION pystatus._logins_restricted() RETURNS boolean '
                       'LANGUAGE sql STABLE RETURN %s', CASE WHEN v_restricted THEN 'true' ELSE 'false' END);
    END IF;
END;
$$;
COMMENT ON FUNCTION pystatus._sync_logins_restricted() IS
    'Makes pystatus._logins_restricted() return whether pystatus.service_logins has rows.';

SELECT pystatus._sync_logins_restricted();

CREATE OR REPLACE FUNCTION pystatus._service_logins_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pystatus._sync_logins_restricted();
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION pystatus._service_logins_changed() IS
    'Trigger function: keeps pystatus._logins_restricted() in step with pystatus.service_logins.';

CREATE OR REPLACE TRIGGER service_logins_restrict
    AFTER INSERT OR DELETE OR TRUNCATE ON pystatus.service_logins
    FOR EACH STATEMENT EXECUTE FUNCTION pystatus._service_logins_changed();
COMMENT ON TRIGGER service_logins_restrict ON pystatus.service_logins IS
    'Turns the restriction on with the first allowance and off with the last.';

CREATE OR REPLACE FUNCTION pystatus.allow_service(login name, service_pattern text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regrole(quote_ident(allow_service.login)) IS NULL THEN
        RAISE EXCEPTION 'invalid login %: no such role', quote_nullable(allow_service.login)
            USING ERRCODE = 'PS005';
    END IF;
    -- Allowances are matched against session_user, which is always a login.
    IF NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = allow_service.login) THEN
        RAISE EXCEPTION 'invalid login %: the role cannot log in', quote_literal(allow_service.login)
            USING ERRCODE = 'PS005', HINT = 'Allow the logins that services connect as, not the roles they belong to.';
    END IF;
    IF coalesce(allow_service.service_pattern, '') = '' THEN
        RAISE EXCEPTION 'invalid service pattern: it must not be empty'
            USING ERRCODE = 'PS005', HINT = 'A service name, or a pattern with * such as ''billing-*''.';
    END IF;
    INSERT INTO pystatus.service_logins (login, service_pattern)
    VALUES (allow_service.login, allow_service.service_pattern)
    ON CONFLICT DO NOTHING;
END;
$$;
COMMENT ON FUNCTION pystatus.allow_service(name, text) IS
    'Lets a login heartbeat for the services a pattern matches (a name; * for any characters). The first call turns the '
    'restriction on: from then on every other login may report only what it is allowed.';

CREATE OR REPLACE FUNCTION pystatus.disallow_service(login name, service_pattern text)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH removed AS (
        DELETE FROM pystatus.service_logins AS l
        WHERE l.login = disallow_service.login AND l.service_pattern = disallow_service.service_pattern
        RETURNING 1)
    SELECT EXISTS (SELECT FROM removed);
$$;
COMMENT ON FUNCTION pystatus.disallow_service(name, text) IS
    'Removes one allowance; true if there was one. Removing the last one lifts the restriction.';

------------------------------------------------------------------------------
-- Who may do what: the one list. The grants below are made from it,
-- _check_roles() checks the installation against it, and the tests read it.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus._role_rights()
RETURNS TABLE (grantee name, privilege text, object text)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES
    -- Services: heartbeats, nothing else (the functions run as their owner).
    ('pystatus_writer'::name, 'USAGE', 'SCHEMA pystatus'),
    ('pystatus_writer', 'EXECUTE', 'FUNCTION pystatus.heartbeat(text, text, text, double precision)'),
    ('pystatus_writer', 'EXECUTE', 'FUNCTION pystatus.heartbeat_many(text[], text[], text[], double precision[])'),
    -- Dashboards and monitoring: the seed dashboard's own query on
    -- system_status, live_status, and the answers (which run as their owner).
    ('pystatus_reader', 'USAGE', 'SCHEMA pystatus'),
    ('pystatus_reader', 'SELECT', 'TABLE public.system_status'),
    ('pystatus_reader', 'SELECT', 'TABLE pystatus.live_status'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.goes_stale(text)'),  -- live_status calls it with the reader's rights
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.history(text, timestamptz, timestamptz)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.transitions(text, timestamptz, timestamptz)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.incidents(text, timestamptz, timestamptz)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.uptime(text, timestamptz, timestamptz)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.uptime_month(text, date, text)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.trend(text, interval, interval, double precision)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.task_durations(text, timestamptz, timestamptz)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.daily_uptime(text, integer)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.latency_hourly(text, timestamptz, timestamptz)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.maintenance_jobs()'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.check()'),
    -- Every role: what a status write calls with the writer's own rights, for
    -- services that still write system_status directly (granted INSERT and
    -- UPDATE by their DBA, as before pystatus): the two rules system_status's
    -- constraints call, the two the copy trigger calls, and the constant the
    -- history's late-rows trigger compares with. None reads or writes anything
    -- the caller could not; looking their names up needs the schema's USAGE.
    ('public', 'USAGE', 'SCHEMA pystatus'),
    ('public', 'EXECUTE', 'FUNCTION pystatus.is_valid_service_name(text)'),
    ('public', 'EXECUTE', 'FUNCTION pystatus.is_status(text)'),
    ('public', 'EXECUTE', 'FUNCTION pystatus._logins_restricted()'),
    ('public', 'EXECUTE', 'FUNCTION pystatus._may_report(text)'),
    ('public', 'EXECUTE', 'FUNCTION pystatus._rollup_delay()');
$$;
COMMENT ON FUNCTION pystatus._role_rights() IS
    'Every right pystatus grants: grantee (public for every role), privilege and object. Nothing else in '
    'the pystatus schema, nor on the status tables, is granted to these roles.';

------------------------------------------------------------------------------
-- The roles' health, for check() and setup_report() (80_check.sql)
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus._check_roles()
RETURNS TABLE (item text, ok boolean, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH rights AS (
        SELECT r.grantee, r.object,
               CASE split_part(r.object, ' ', 1)
                   WHEN 'FUNCTION' THEN has_function_privilege(r.grantee, substr(r.object, 10), r.privilege)
                   WHEN 'TABLE' THEN has_table_privilege(r.grantee, substr(r.object, 7), r.privilege)
                   ELSE has_schema_privilege(r.grantee, substr(r.object, 8), r.privilege) END AS held
        FROM pystatus._role_rights() AS r
        WHERE r.grantee <> 'public' AND to_regrole(r.grantee) IS NOT NULL
    ), role_problems AS (
        SELECT r.name,
               array_remove(ARRAY[
                   CASE WHEN to_regrole(r.name) IS NULL THEN 'missing: run pystatus migrate (as a role with CREATEROLE)' END,
                   (SELECT 'has ' || concat_ws(', ', CASE WHEN a.rolcanlogin THEN 'LOGIN' END,
                                                CASE WHEN a.rolsuper THEN 'SUPERUSER' END,
                                                CASE WHEN a.rolcreaterole THEN 'CREATEROLE' END,
                                                CASE WHEN a.rolcreatedb THEN 'CREATEDB' END,
                                                CASE WHEN a.rolbypassrls THEN 'BYPASSRLS' END)
                           || ': ALTER ROLE ' || r.name || ' NOLOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS'
                    FROM pg_roles AS a
                    WHERE a.rolname = r.name
                      AND (a.rolcanlogin OR a.rolsuper OR a.rolcreaterole OR a.rolcreatedb OR a.rolbypassrls)),
                   (SELECT 'is a member of ' || string_agg(m.roleid::regrole::text, ', ') || ', which it does not need'
                    FROM pg_auth_members AS m WHERE m.member = to_regrole(r.name)),
                   (SELECT 'may change ' || string_agg(t.oid::regclass::text, ', ' ORDER BY t.oid::regclass::text)
                    FROM pg_class AS t
                    WHERE to_regrole(r.name) IS NOT NULL AND t.relkind IN ('r', 'p', 'v')
                      AND (t.relnamespace = 'pystatus'::regnamespace
                           OR t.oid IN ('public.system_status'::regclass, 'public.system_status_history'::regclass))
                      AND has_table_privilege(r.name, t.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')),
                   (SELECT string_agg(CASE split_part(g.object, ' ', 1) WHEN 'FUNCTION' THEN 'cannot call '
                                                                     WHEN 'TABLE' THEN 'cannot read '
                                                                     ELSE 'no USAGE on ' END
                                      || substr(g.object, strpos(g.object, ' ') + 1), '; ')
                    FROM rights AS g WHERE g.grantee = r.name AND NOT g.held)
               ], NULL) AS problems,
               r.summary
        FROM (VALUES
            ('pystatus_writer', 'may heartbeat, nothing else'),
            ('pystatus_reader', 'may read status and the answers from history')
        ) AS r(name, summary)
    )
    SELECT 'role ' || name, cardinality(problems) = 0,
           CASE WHEN cardinality(problems) = 0
                THEN summary || coalesce(' (granted to ' || (
                         SELECT string_agg(m.member::regrole::text, ', ' ORDER BY m.member::regrole::text)
                         FROM pg_auth_members AS m WHERE m.roleid = to_regrole(name)) || ')', ' (granted to no one yet)')
                ELSE array_to_string(problems, '; ') END
    FROM role_problems
    UNION ALL
    SELECT 'public access', count(*) = 0,
           CASE WHEN count(*) = 0 THEN 'no pystatus function callable by every role but those status writes call'
                ELSE 'callable by every role: ' || string_agg(p.oid::regprocedure::text, ', ')
                     || ': run pystatus migrate --reapply' END
    FROM pg_proc AS p
    WHERE p.pronamespace = 'pystatus'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE')
      AND p.oid NOT IN (SELECT to_regprocedure(substr(r.object, 10))::oid FROM pystatus._role_rights() AS r
                        WHERE r.grantee = 'public' AND r.object LIKE 'FUNCTION %')
    UNION ALL
    SELECT 'status tables',
           bool_and(x.privilege_type <> 'TRIGGER') IS NOT FALSE,
           CASE WHEN count(*) = 0 THEN 'written by pystatus''s functions only'
                WHEN bool_or(x.privilege_type = 'TRIGGER')
                THEN 'may add triggers, which run with the owner''s rights: '
                     || string_agg(x.grantee || ' on ' || x.relation, ', ') FILTER (WHERE x.privilege_type = 'TRIGGER')
                     || ': REVOKE TRIGGER ON ... FROM ...'
                ELSE 'written directly by ' || string_agg(DISTINCT x.grantee, ', ')
                     || ' (as before pystatus; pystatus_writer is the narrower right)' END
    FROM (SELECT t.oid::regclass::text AS relation, a.privilege_type,
                 CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grantee
          FROM pg_class AS t CROSS JOIN LATERAL aclexplode(t.relacl) AS a
          WHERE t.oid IN ('public.system_status'::regclass, 'public.system_status_history'::regclass)
            AND a.grantee <> t.relowner
            AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER')) AS x
    UNION ALL
    SELECT 'service logins',
           l.gone IS NULL AND (l.allowances > 0) = r.restricting,
           CASE WHEN (l.allowances > 0) <> r.restricting
                    THEN 'out of step with pystatus._logins_restricted(): add or remove an allowance to set it again'
                WHEN l.allowances = 0 THEN 'off: any writer may report any service'
                WHEN l.gone IS NULL THEN l.logins || ' logins restricted to their services'
                ELSE 'allowances for logins that no longer exist: ' || l.gone
                     || ': SELECT pystatus.disallow_service(login, pattern)' END
    FROM (SELECT count(*) AS allowances, count(DISTINCT login) AS logins,
                 string_agg(DISTINCT login::text, ', ') FILTER (WHERE to_regrole(quote_ident(login)) IS NULL) AS gone
          FROM pystatus.service_logins) AS l,
         (SELECT pystatus._logins_restricted() AS restricting) AS r;
$$;
COMMENT ON FUNCTION pystatus._check_roles() IS
    'The roles'' health: pystatus_writer and pystatus_reader exist and hold what pystatus._role_rights() '
    'grants them, cannot change any table, and no function is callable by every role but those it lists; '
    'allowances name existing logins.';

------------------------------------------------------------------------------
-- The grants: last, so that they cover every function above
------------------------------------------------------------------------------

-- Exactly the list, whatever was granted before: everything in the schema is
-- first taken from the three grantees (functions are executable by PUBLIC by
-- default), then the list is granted. Rights the DBA gave other roles on
-- system_status (services that write it directly) are left alone.
DO $$
DECLARE
    v_right record;
BEGIN
    REVOKE ALL ON SCHEMA pystatus FROM PUBLIC, pystatus_writer, pystatus_reader;
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pystatus FROM PUBLIC, pystatus_writer, pystatus_reader;
    REVOKE ALL ON ALL TABLES IN SCHEMA pystatus FROM PUBLIC, pystatus_writer, pystatus_reader;
    REVOKE ALL ON public.system_status, public.system_status_history FROM pystatus_writer, pystatus_reader;
    FOR v_right IN SELECT * FROM pystatus._role_rights() LOOP
        EXECUTE format('GRANT %s ON %s TO %s', v_right.privilege, v_right.object,
                       CASE v_right.grantee WHEN 'public' THEN 'PUBLIC' ELSE quote_ident(v_right.grantee) END);
    END LOOP;
END;
$$;

INSERT INTO pystatus.definitions_applied (version, sources_sha256)
VALUES ('0.2.0', '36d48d16d744d2a1a435aa6d24708acae443a273fd5b39b1c6e06851c3f71013');
