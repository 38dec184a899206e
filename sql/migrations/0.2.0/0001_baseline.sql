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
