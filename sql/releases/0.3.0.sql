-- pystatus 0.3.0 as released: what `pystatus migrate` ran on an empty database
-- (default settings), in one transaction. Frozen: never edit this file.
-- migrations: 0001_baseline 0002_finite_times 0003_alerts 0004_ping_tokens 0005_compact_history 0006_rollup_spans 0007_current_hour_spans 0008_history_time_index 0009_rollup_running_totals 0010_job_locks 0011_alert_queue 0012_overview_pages 0013_metric_families

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

-- The characters the naming rule names, spelled out rather than left to the
-- database's locale (whose [[:space:]] differs between C.UTF-8 and en_US).
-- Invisible characters (soft hyphen, zero-width spaces and joiners, direction
-- marks, overrides and isolates, invisible operators, fillers, byte-order
-- mark) would let one name pass for another on a dashboard.
--
-- They live in a PL/pgSQL function on purpose: the table's constraint inlines
-- is_valid_service_name() into every statement that writes system_status, and
-- a long pattern literal in its body is read back from the catalog each time
-- (a heartbeat cost 27 % more instructions that way); this function is called
-- once per statement instead, when the planner folds constants, and keeps its
-- compiled body for the session.
-- search_path: not pinned, because the planner calls it for every statement that
-- writes system_status, where a pin would cost a configuration save and
-- restore; it calls nothing.
CREATE OR REPLACE FUNCTION pystatus._name_characters(kind text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN CASE
        WHEN kind OPERATOR(pg_catalog.=) 'white space' THEN '\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000'
        WHEN kind OPERATOR(pg_catalog.=) 'control' THEN '\u0001-\u001f\u007f-\u009f'
        WHEN kind OPERATOR(pg_catalog.=) 'invisible' THEN '\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0'
    END;
END;
$$;
COMMENT ON FUNCTION pystatus._name_characters(text) IS
    'The characters of one kind (white space, control, invisible) that the naming rule names, as '
    'the inside of a regular expression''s bracket.';

-- search_path: not pinned, because the planner calls it for every statement that
-- writes system_status (see above); it names its functions with their schema.
CREATE OR REPLACE FUNCTION pystatus._service_name_pattern()
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    -- 1 to 64 characters, none a control or invisible character, the first and
    -- last not white space (so not blank).
    RETURN pg_catalog.format('^[^%1$s%2$s%3$s]([^%1$s%2$s]{0,62}[^%1$s%2$s%3$s])?$',
                  pystatus._name_characters('control'), pystatus._name_characters('invisible'),
                  pystatus._name_characters('white space'));
END;
$$;
COMMENT ON FUNCTION pystatus._service_name_pattern() IS
    'The naming rule as one regular expression, for is_valid_service_name().';

-- One cleaning rule for every free text a writer sets (a service's current
-- task, an alert receiver's error): such text is printed by terminals and
-- mailed, and an escape sequence in it is an instruction to the terminal.
-- Control and invisible characters become spaces, runs of white space one
-- space, and none is left at either end. pystatus.names.clean_text() is the
-- Python twin, kept in agreement by a test.
CREATE OR REPLACE FUNCTION pystatus.clean_text(text text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN btrim(regexp_replace(regexp_replace(text,
                 '[' || pystatus._name_characters('control') || pystatus._name_characters('invisible') || ']',
                 ' ', 'g'),
             '[' || pystatus._name_characters('white space') || ']+', ' ', 'g'), ' ');
COMMENT ON FUNCTION pystatus.clean_text(text) IS
    'Free text on one printable line: control and invisible characters become spaces, runs of '
    'white space one space, none at either end. Applied to every text a writer sets.';

-- What clean_text() would change, as one regular expression: the copy trigger
-- tests every text it copies with it, and cleans only those it matches. A
-- constant PL/pgSQL function, folded once into the trigger's kept plans. A
-- test keeps the two in agreement.
CREATE OR REPLACE FUNCTION pystatus._unclean_text_pattern()
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A control, invisible or white-space character other than a space; two
    -- spaces; a space at either end.
    RETURN '[\u0001-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]|  |^ | $';
END;
$$;
COMMENT ON FUNCTION pystatus._unclean_text_pattern() IS
    'Matches exactly the texts pystatus.clean_text() changes.';

CREATE OR REPLACE FUNCTION pystatus.service_name_problem(service_name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN service_name IS NULL THEN 'must not be null'
    WHEN service_name = '' THEN 'must not be empty'
    WHEN char_length(service_name) > 64 THEN
        'must be at most 64 characters (it has ' || char_length(service_name) || ')'
    WHEN service_name !~ ('[^' || pystatus._name_characters('white space') || ']') THEN 'must not be blank'
    WHEN service_name ~ ('[' || pystatus._name_characters('control') || ']') THEN
        'must not contain control characters'
    WHEN service_name ~ ('[' || pystatus._name_characters('invisible') || ']') THEN
        'must not contain invisible or direction-changing characters (it has U+'
        || lpad(upper(to_hex(ascii(substring(service_name
               FROM '[' || pystatus._name_characters('invisible') || ']')))), 4, '0') || ')'
    WHEN service_name ~ ('^[' || pystatus._name_characters('white space') || ']|['
                         || pystatus._name_characters('white space') || ']$') THEN
        'must not start or end with white space'
END;
COMMENT ON FUNCTION pystatus.service_name_problem(text) IS
    'Why a service name breaks the naming rules (1-64 characters, not blank, no control or invisible '
    'characters, no white space at either end), or NULL when it is valid.';

CREATE OR REPLACE FUNCTION pystatus.is_valid_service_name(service_name text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
-- service_name_problem() says which rule a name breaks; a test checks that the
-- two agree.
RETURN service_name ~ pystatus._service_name_pattern();
COMMENT ON FUNCTION pystatus.is_valid_service_name(text) IS
    'Whether a service name keeps the naming rules; the fast test behind the table constraint '
    'and the heartbeat functions.';

-- The vocabulary lives in a PL/pgSQL function for the reason the name's
-- characters do: system_status's constraint inlines is_status() into every
-- statement that writes it, and the body it inlines is read back from the
-- catalog and parsed each time. With the list spelled out in that body (a
-- query tree of seven constants, stored compressed), preparing the constraint
-- cost a heartbeat about 100,000 instructions, a sixth of all it costs; a call
-- of this function, folded once per statement, costs a few thousand.
-- search_path: not pinned, because the planner calls it for every statement that
-- writes system_status (see _name_characters()); it calls nothing.
CREATE OR REPLACE FUNCTION pystatus._statuses()
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN ARRAY['ok', 'degraded', 'down', 'starting', 'stopping', 'maintenance', 'stale'];
END;
$$;
COMMENT ON FUNCTION pystatus._statuses() IS
    'The status vocabulary as an array, for is_status().';

CREATE OR REPLACE FUNCTION pystatus.is_status(status text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN status = ANY (pystatus._statuses());
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
                  HINT = 'A service name has 1 to 64 characters, is not blank, has no control or invisible '
                         'characters and no white space at either end.';
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
-- The status model (docs/answers.md, "How pystatus reads history"):
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

-- History's index (20_tables.sql) lists each service's rows by this hour,
-- not by their exact time: one key for all of a service's rows in an hour,
-- which PostgreSQL deduplicates into a posting list of about 6 bytes a row. A
-- query on one service's rows in [since, until) names the hours too, as
--   _history_hour(h.heartbeat_timestamp) BETWEEN _history_hour(since) AND _history_hour(until)
-- beside its test on heartbeat_timestamp, so that the index bounds the scan.
CREATE OR REPLACE FUNCTION pystatus._history_hour(at timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN date_bin('1 hour', at, pystatus._bucket_origin());
COMMENT ON FUNCTION pystatus._history_hour(timestamptz) IS
    'The UTC hour a history row is indexed under (system_status_history_service_hour).';

-- History's index by time (20_tables.sql, BRIN) is on this minute, not on
-- heartbeat_timestamp itself: only the fleet's reads by time name it. On the
-- bare column the planner also combined it with the service-hour index in one
-- service's reads (they test heartbeat_timestamp too), and a BRIN scan reads
-- the summary of every range of the partition: 0.15 ms a lookup on a
-- partition of three days, more as it fills, a thousand times for a fleet.
CREATE OR REPLACE FUNCTION pystatus._history_minute(at timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN date_bin('1 minute', at, pystatus._bucket_origin());
COMMENT ON FUNCTION pystatus._history_minute(timestamptz) IS
    'The UTC minute a history row is indexed under by time (system_status_history_time).';

-- PL/pgSQL, not SQL: history's trigger for late rows tests it in its WHEN
-- clause, which is prepared for every statement that writes history; an SQL
-- function there is inlined, its body read back from the catalog and parsed,
-- each time (about 40,000 instructions a heartbeat), where a PL/pgSQL call,
-- folded to a constant, costs a few thousand.
-- search_path: not pinned, because the planner calls it for every statement that
-- writes history; it calls nothing.
CREATE OR REPLACE FUNCTION pystatus._rollup_delay()
RETURNS interval
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN interval '5 minutes';
END;
$$;
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

-- A status's time is finite: 'infinity' in last_heartbeat broke every reader
-- (live_status, the dashboard) and maintenance. New writes are refused by the
-- copy trigger; this holds the table itself to it. A table that already holds
-- such a time (adopted from a seed install) is not changed: the migration
-- stops, saying which rows to fix.
-- depends: 0009_rollup_running_totals

SET LOCAL search_path = pg_catalog, pg_temp;

DO $$
DECLARE
    v_rows text := (SELECT string_agg(format('%L (%s)', service_name, last_heartbeat), ', ')
                    FROM public.system_status WHERE NOT isfinite(last_heartbeat));
BEGIN
    IF v_rows IS NOT NULL THEN
        RAISE EXCEPTION 'public.system_status holds times that are not finite: %', v_rows
            USING ERRCODE = 'PS004',
                  HINT = 'Set them first, e.g. UPDATE system_status SET last_heartbeat = now() '
                         'WHERE NOT isfinite(last_heartbeat); then migrate again.';
    END IF;
END;
$$;

ALTER TABLE public.system_status
    ADD CONSTRAINT system_status_last_heartbeat_finite CHECK (isfinite(last_heartbeat));

-- Alerts (0.3.0): status events written in the same transaction as the
-- change, alert channels, rules, their open alerts, the messages to deliver
-- and the delivery log, maintenance windows, and the uptime windows that
-- Prometheus scrapes read.
-- depends: 0001_baseline

SET LOCAL search_path = pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- Status changes and alerts (75_alerts.sql), maintenance windows (45_windows.sql)
------------------------------------------------------------------------------

CREATE TABLE pystatus.status_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_name varchar(64) NOT NULL,
    at timestamptz NOT NULL,
    from_status varchar(16),
    to_status varchar(16) NOT NULL,
    cause text NOT NULL CHECK (cause IN ('reported', 'silence', 'window started', 'window ended')),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX status_events_service ON pystatus.status_events (service_name, id);
CREATE INDEX status_events_recorded ON pystatus.status_events (recorded_at);
COMMENT ON TABLE pystatus.status_events IS
    'Every change of a service''s effective status, written in the same transaction as the change: '
    'a reported status that differs from the previous one (cause reported; from_status NULL for a '
    'service''s first heartbeat), stale written by the sweeper (silence, at the deadline), and the '
    'edges of maintenance windows (window started/ended). The alerts'' outbox; kept as long as history.';

CREATE TABLE pystatus.alert_channels (
    name varchar(64) PRIMARY KEY
        CONSTRAINT alert_channels_name_valid CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    kind text NOT NULL CHECK (kind IN ('webhook', 'email', 'apprise')),
    target text NOT NULL CHECK (target <> ''),
    options jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pystatus.alert_channels IS
    'Where alerts go. webhook: target is the URL, options secret (HMAC key) and timeout; email: '
    'target is the recipients, options the SMTP server (host, port, starttls, ssl, username, password, '
    'sender); apprise: target is one or more Apprise URLs. target and options may hold secrets: only '
    'the owner and pystatus_alerter read them (pystatus.alert_channel_list() shows them masked).';

CREATE TABLE pystatus.alert_rules (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_pattern text NOT NULL CHECK (service_pattern <> ''),
    like_pattern text NOT NULL GENERATED ALWAYS AS (
        replace(replace(replace(replace(service_pattern, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%')) STORED,
    channel varchar(64) NOT NULL REFERENCES pystatus.alert_channels ON DELETE CASCADE,
    down_for interval NOT NULL DEFAULT interval '0' CHECK (down_for >= interval '0'),
    down_reports integer NOT NULL DEFAULT 1 CHECK (down_reports >= 1),
    up_for interval NOT NULL DEFAULT interval '0' CHECK (up_for >= interval '0'),
    remind_every interval CHECK (remind_every >= interval '1 minute'),
    UNIQUE (service_pattern, channel)
);
COMMENT ON TABLE pystatus.alert_rules IS
    'Which services (a name, or a pattern where * stands for any characters) alert which channel, '
    'and when: down (or stale) for at least down_for and for down_reports consecutive reports (silence '
    'counts as enough), recovered once out of down for up_for, reminders every remind_every while '
    'still down (NULL: none).';

CREATE TABLE pystatus.alert_state (
    rule_id bigint NOT NULL REFERENCES pystatus.alert_rules ON DELETE CASCADE,
    service_name varchar(64) NOT NULL,
    down_since timestamptz NOT NULL,
    alerted_at timestamptz NOT NULL,
    reminded_at timestamptz,
    reminders integer NOT NULL DEFAULT 0,
    PRIMARY KEY (rule_id, service_name)
);
COMMENT ON TABLE pystatus.alert_state IS
    'The open alerts: a row from the down message of a rule and service until its recovery message.';

CREATE TABLE pystatus.alert_messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key uuid NOT NULL UNIQUE,
    channel varchar(64) NOT NULL REFERENCES pystatus.alert_channels ON DELETE CASCADE,
    rule_id bigint REFERENCES pystatus.alert_rules ON DELETE SET NULL,
    service_name varchar(64),
    kind text NOT NULL CHECK (kind IN ('down', 'reminder', 'recovered', 'test')),
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_until timestamptz,
    sent_at timestamptz
);
CREATE INDEX alert_messages_due ON pystatus.alert_messages (next_attempt_at) WHERE state = 'pending';
CREATE INDEX alert_messages_created ON pystatus.alert_messages (created_at);
COMMENT ON TABLE pystatus.alert_messages IS
    'Messages to deliver, at least once, each with its idempotency key (sent in every copy): pending '
    'until a worker delivers it (sent) or gives up (failed). A worker holds a message it is sending '
    'until claimed_until; after that (the worker died) another sends it again.';

CREATE TABLE pystatus.alert_attempts (
    message_id bigint NOT NULL REFERENCES pystatus.alert_messages ON DELETE CASCADE,
    attempt integer NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    worker text NOT NULL,
    outcome text CHECK (outcome IN ('sent', 'failed')),
    error text,
    PRIMARY KEY (message_id, attempt)
);
COMMENT ON TABLE pystatus.alert_attempts IS
    'The delivery log: every attempt to send a message, with its worker, outcome and error. An '
    'attempt with no outcome was cut short (its worker died).';

CREATE TABLE pystatus.maintenance_windows (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_pattern text NOT NULL CHECK (service_pattern <> ''),
    like_pattern text NOT NULL GENERATED ALWAYS AS (
        replace(replace(replace(replace(service_pattern, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%')) STORED,
    kind text NOT NULL DEFAULT 'maintenance' CHECK (kind IN ('maintenance', 'snooze')),
    starts timestamptz NOT NULL CHECK (isfinite(starts)),
    ends timestamptz NOT NULL CHECK (isfinite(ends)),
    every interval CHECK (every > interval '0'),
    repeat_until timestamptz,
    time_zone text NOT NULL DEFAULT 'UTC',
    reason text CHECK (octet_length(reason) <= 1024),
    created_by name NOT NULL DEFAULT session_user,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends > starts),
    CHECK (every IS NULL OR ends - starts <= every),
    CHECK (every IS NOT NULL OR repeat_until IS NULL)
);
COMMENT ON TABLE pystatus.maintenance_windows IS
    'Planned quiet times. maintenance: inside a window a service''s down time (reported down or '
    'silence) counts as maintenance in every answer, and its alerts are muted. snooze: alerts muted '
    'only. Recurring when every is set: the window repeats every that long in time_zone''s wall '
    'clock (a 02:00 window stays at 02:00 across daylight saving), until repeat_until (NULL: forever).';

CREATE TABLE pystatus.uptime_windows (
    service_name varchar(64) NOT NULL,
    time_window text NOT NULL CHECK (time_window IN ('1d', '7d', '30d')),
    up_us bigint NOT NULL,
    down_us bigint NOT NULL,
    PRIMARY KEY (service_name, time_window)
);
COMMENT ON TABLE pystatus.uptime_windows IS
    'Per service, microseconds up and down over the last 24 rolled-up hours (1d) and the last 7 and '
    '30 whole rolled-up days: what a Prometheus scrape reads (pystatus.metrics()), recomputed by '
    'pystatus.refresh_rollups() whenever the rollups change.';

CREATE TABLE pystatus.alerts_progress (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    evaluated_until timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pystatus.alerts_progress IS
    'Until when pystatus.evaluate_alerts() has recorded the edges of maintenance windows.';
INSERT INTO pystatus.alerts_progress DEFAULT VALUES;

-- Ping tokens (0.3.0): the secrets of the HTTP ping endpoint, one or more per
-- service, stored as their SHA-256 hash.
-- depends: 0003_alerts

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE TABLE pystatus.ping_tokens (
    token_hash bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    token_prefix text NOT NULL UNIQUE CHECK (token_prefix ~ '^ps_[0-9a-f]{8}$'),
    service_name varchar(64) NOT NULL
        CONSTRAINT ping_tokens_service_name_valid CHECK (pystatus.is_valid_service_name(service_name)),
    note text CHECK (octet_length(note) <= 1024),
    created_by name NOT NULL DEFAULT session_user,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ping_tokens_service ON pystatus.ping_tokens (service_name);
COMMENT ON TABLE pystatus.ping_tokens IS
    'The secrets of the HTTP ping endpoint (pystatus ingest): each lets whoever holds it report the '
    'status of one service. Only the SHA-256 of a token is kept; token_prefix, its first characters, '
    'names it in lists. Made by add_ping_token(), removed by remove_ping_token().';

-- Compact history (0.3.0): a history row without a row identity or a copy of
-- its time, indexed by service and hour (deduplicated): 133 bytes a row with
-- its index before, about 68 after.
-- depends: 0002_finite_times
--
-- Safe on a live database: dropping a column and a default only changes the
-- catalog, and the new index is built here only on partitions without rows.
-- `pystatus migrate` builds it on the others after this transaction, with
-- CREATE INDEX CONCURRENTLY (heartbeats go on meanwhile), then drops the old
-- index (pystatus/migrations.py, finish_history_index()).

SET LOCAL search_path = pg_catalog, pg_temp;

-- The copy trigger runs once per statement now (30_write.sql creates it): the
-- row trigger and the function that recorded one event per row go.
DROP TRIGGER IF EXISTS system_status_copy_to_history ON public.system_status;
DROP FUNCTION IF EXISTS pystatus._record_status_event(text, text, text, timestamptz, boolean);

ALTER TABLE public.system_status_history DROP COLUMN id;
ALTER TABLE public.system_status_history
    ALTER COLUMN created_at DROP DEFAULT,
    ALTER COLUMN created_at DROP NOT NULL;
COMMENT ON COLUMN public.system_status_history.created_at IS
    'When the row was written, where that differs from heartbeat_timestamp: backfilled records and '
    'the sweeper''s stale rows. NULL when the row was written at heartbeat_timestamp.';

CREATE INDEX system_status_history_service_hour
    ON ONLY public.system_status_history (service_name, pystatus._history_hour(heartbeat_timestamp));
COMMENT ON INDEX public.system_status_history_service_hour IS
    'Each service''s rows by UTC hour: queries bound their scans with pystatus._history_hour().';

DO $$
DECLARE
    v_partition record;
    v_empty boolean;
BEGIN
    FOR v_partition IN
        SELECT n.nspname AS schema_name, c.relname AS table_name
        FROM pg_inherits AS i
        JOIN pg_class AS c ON c.oid = i.inhrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE i.inhparent = 'public.system_status_history'::regclass
    LOOP
        EXECUTE format('SELECT NOT EXISTS (SELECT FROM %I.%I)', v_partition.schema_name, v_partition.table_name)
            INTO v_empty;
        CONTINUE WHEN NOT v_empty;
        EXECUTE format('CREATE INDEX %I ON %I.%I (service_name, pystatus._history_hour(heartbeat_timestamp))',
                       left(v_partition.table_name, 50) || '_service_hour',
                       v_partition.schema_name, v_partition.table_name);
        EXECUTE format('ALTER INDEX public.system_status_history_service_hour ATTACH PARTITION %I.%I',
                       v_partition.schema_name, left(v_partition.table_name, 50) || '_service_hour');
    END LOOP;
    -- Every partition had no rows (a new install): the new index is complete.
    IF (SELECT x.indisvalid FROM pg_index AS x
        WHERE x.indexrelid = 'public.system_status_history_service_hour'::regclass) THEN
        DROP INDEX public.system_status_history_service_time;
    END IF;
END;
$$;

-- Rollups that say when, not only how long (0.3.0): the spans of each hour
-- not wholly up, and the current hour rolled up every minute, so that
-- incidents and the edges of a window are read from rollups, not raw history.
-- depends: 0004_ping_tokens
--
-- Hours rolled up before this have no spans: answers read raw history for them
-- as before (rollup_state.spans_from). Only new, empty tables and two columns
-- with a value: safe on a live database.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE TABLE pystatus.rollup_spans (
    service_name varchar(64) NOT NULL,
    bucket timestamptz NOT NULL,
    down tstzmultirange NOT NULL,
    silent tstzmultirange NOT NULL,
    maintenance tstzmultirange NOT NULL,
    no_data tstzmultirange NOT NULL,
    PRIMARY KEY (service_name, bucket)
);
CREATE INDEX rollup_spans_bucket ON pystatus.rollup_spans (bucket);
COMMENT ON TABLE pystatus.rollup_spans IS
    'Per service and UTC hour not wholly up: when it was down (silent: the part of down that was '
    'silence past the deadline), in maintenance, and without data (no heartbeat yet, starting, '
    'stopping); the rest of the hour was up. Kept with rollup_hourly, from the hour '
    'rollup_state.spans_from on.';

CREATE TABLE pystatus.rollup_current (
    service_name varchar(64) PRIMARY KEY,
    up_us bigint NOT NULL,
    down_us bigint NOT NULL,
    maintenance_us bigint NOT NULL
);
COMMENT ON TABLE pystatus.rollup_current IS
    'Per service: microseconds up, down and in maintenance in [rollup_state.current_from, '
    'rollup_state.current_until), the part of the current hour already rolled up. Extended every '
    'minute by pystatus.refresh_rollups(), started afresh when the hour is rolled up.';

ALTER TABLE pystatus.rollup_state
    ADD COLUMN spans_from timestamptz,
    ADD COLUMN current_from timestamptz,
    ADD COLUMN current_until timestamptz;
-- Spans from the next hour rolled up on, unless nothing has been rolled up yet.
UPDATE pystatus.rollup_state
SET spans_from = CASE WHEN EXISTS (SELECT FROM pystatus.rollup_hourly) THEN rolled_until ELSE '-infinity' END,
    current_from = rolled_until,
    current_until = rolled_until;
ALTER TABLE pystatus.rollup_state
    ALTER COLUMN spans_from SET NOT NULL,
    ALTER COLUMN current_from SET NOT NULL,
    ALTER COLUMN current_until SET NOT NULL;
COMMENT ON TABLE pystatus.rollup_state IS
    'rolled_until: rollups hold every hour before it (an hour is rolled up 5 minutes after it '
    'ends); retention: how long rollups are kept (default 400 days, longer than raw history); '
    'spans_from: the first hour with rollup_spans (-infinity when every rollup has them; on an '
    'installation upgraded to 0.3.0, the hours rolled up before have none); current_from, '
    'current_until: what rollup_current holds (used while current_from = rolled_until).';

-- Replaced by _rollup_coverage() (which part of a window rollups hold, now in
-- five parts) and by _roll_up()'s own query (which writes the spans too).
DROP FUNCTION IF EXISTS pystatus._rolled_hours(text, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS pystatus._rollup_buckets(text, timestamptz, timestamptz, interval);

-- The current hour's rollup says when, as the hours' do (0.3.0): incidents read
-- its down and silent spans, and the answers' raw reading after it starts from
-- the row it keeps (the one in force where it stops), not from a search of history.
-- depends: 0006_rollup_spans
--
-- The current hour so far is rolled up again at the next refresh (a minute),
-- with its spans: until then answers read it from raw history, as before 0006.
-- New columns with constant defaults on a table of one row a service: safe on
-- a live database.

SET LOCAL search_path = pg_catalog, pg_temp;

ALTER TABLE pystatus.rollup_current
    ADD COLUMN down tstzmultirange NOT NULL DEFAULT '{}',
    ADD COLUMN silent tstzmultirange NOT NULL DEFAULT '{}',
    ADD COLUMN last_at timestamptz,
    ADD COLUMN last_status varchar(16);
COMMENT ON TABLE pystatus.rollup_current IS
    'Per service, for [rollup_state.current_from, rollup_state.current_until), the part of the '
    'current hour already rolled up: microseconds up, down and in maintenance; when it was down '
    '(silent: the part of down that was silence past the deadline); and the service''s newest '
    'history row before current_until (last_at, last_status; NULL until found), the row in force '
    'there, kept from hour to hour. Extended every minute by pystatus.refresh_rollups(); its sums '
    'start afresh when the hour is rolled up.';

DELETE FROM pystatus.rollup_current;
UPDATE pystatus.rollup_state SET current_from = rolled_until, current_until = rolled_until;

-- History indexed by time as well, with a block-range (BRIN) index: what the
-- fleet's answers read after the current hour's rollup (the last minutes of
-- every service) is one range of the newest partition's pages, read at once,
-- rather than each service's whole current hour through the service-hour index.
-- On the minute (_history_minute()), which only those reads name: on the bare
-- column the planner also combined it with the service-hour index in one
-- service's reads, and a BRIN scan reads every range's summary.
-- A range summary a few dozen bytes for every 32 pages: the index is a few
-- hundred kilobytes for a month of 1,000 services.
-- depends: 0005_compact_history
--
-- Safe on a live database: built here only on partitions without rows;
-- `pystatus migrate` builds it on the others after this transaction with
-- CREATE INDEX CONCURRENTLY, as for 0005 (pystatus/migrations.py,
-- finish_history_index()). Until then, answers read as before.

SET LOCAL search_path = pg_catalog, pg_temp;

-- finish_history_index() reads every index it builds from one list now.
DROP FUNCTION IF EXISTS pystatus._history_index_pending();

CREATE INDEX system_status_history_time
    ON ONLY public.system_status_history USING brin (pystatus._history_minute(heartbeat_timestamp))
    WITH (pages_per_range = 32, autosummarize = on);
COMMENT ON INDEX public.system_status_history_time IS
    'Rows by UTC minute (_history_minute()), per range of 32 pages (BRIN): the fleet''s newest rows, '
    'read at once. Summarized '
    'as each range fills (autosummarize), rows being written in time order.';

DO $$
DECLARE
    v_partition record;
    v_empty boolean;
BEGIN
    FOR v_partition IN
        SELECT n.nspname AS schema_name, c.relname AS table_name
        FROM pg_inherits AS i
        JOIN pg_class AS c ON c.oid = i.inhrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE i.inhparent = 'public.system_status_history'::regclass
    LOOP
        EXECUTE format('SELECT NOT EXISTS (SELECT FROM %I.%I)', v_partition.schema_name, v_partition.table_name)
            INTO v_empty;
        CONTINUE WHEN NOT v_empty;
        EXECUTE format('CREATE INDEX %I ON %I.%I USING brin (pystatus._history_minute(heartbeat_timestamp)) '
                       'WITH (pages_per_range = 32, autosummarize = on)',
                       left(v_partition.table_name, 50) || '_time',
                       v_partition.schema_name, v_partition.table_name);
        EXECUTE format('ALTER INDEX public.system_status_history_time ATTACH PARTITION %I.%I',
                       v_partition.schema_name, left(v_partition.table_name, 50) || '_time');
    END LOOP;
END;
$$;

-- Running totals in the hourly rollups: a window's whole hours are read as two
-- rows a service (its first and last hour) instead of every hour and day
-- between, 52 rows a service for 30 days. The fleet's uptime reads 2,000 rows
-- at 1,000 services instead of 52,000. And the dashboard's 24-hour strips,
-- kept with the 1d uptime window (pystatus.service_overview() read them from
-- the hourly rollups at each call, nine tenths of its time).
-- depends: 0007_current_hour_spans
--
-- Computes the totals of the rollups already kept, in this transaction: it
-- rewrites pystatus.rollup_hourly (21 s for 785,000 rows, 30 days of 1,000
-- services, on 2 cores), and answers read from rollups wait for it meanwhile.
-- Heartbeats do not touch it.

SET LOCAL search_path = pg_catalog, pg_temp;

ALTER TABLE pystatus.rollup_hourly
    ADD COLUMN up_us_before bigint,
    ADD COLUMN down_us_before bigint,
    ADD COLUMN maintenance_us_before bigint;

UPDATE pystatus.rollup_hourly AS r
SET up_us_before = t.up_us_before, down_us_before = t.down_us_before,
    maintenance_us_before = t.maintenance_us_before
FROM (SELECT h.service_name, h.bucket,
             coalesce(sum(h.up_us) OVER earlier, 0) AS up_us_before,
             coalesce(sum(h.down_us) OVER earlier, 0) AS down_us_before,
             coalesce(sum(h.maintenance_us) OVER earlier, 0) AS maintenance_us_before
      FROM pystatus.rollup_hourly AS h
      WINDOW earlier AS (PARTITION BY h.service_name ORDER BY h.bucket
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) AS t
WHERE r.service_name = t.service_name AND r.bucket = t.bucket;

ALTER TABLE pystatus.rollup_hourly
    ALTER COLUMN up_us_before SET NOT NULL,
    ALTER COLUMN down_us_before SET NOT NULL,
    ALTER COLUMN maintenance_us_before SET NOT NULL;
COMMENT ON COLUMN pystatus.rollup_hourly.up_us_before IS
    'up_us of the service''s earlier rows, added up (down_us_before, maintenance_us_before alike): '
    'the hours [a, b) of a service add up to the last row''s before and own values less the first '
    'row''s before. Rows deleted past retention leave the later ones as they are.';

ALTER TABLE pystatus.uptime_windows ADD COLUMN hourly_uptime double precision[];
COMMENT ON COLUMN pystatus.uptime_windows.hourly_uptime IS
    'In the 1d row: the uptime of each of its 24 hours, oldest first (NULL where no data), the '
    'strip of pystatus.service_overview(); NULL in the others.';

-- pystatus's jobs serialize on rows of a table of its own instead of advisory
-- locks, which any login that can connect may take (and so silence alerting,
-- maintenance and rollups); and the bounds on what one writer may add.
-- depends: 0008_history_time_index
--
-- Two new tables, nothing rewritten: it takes no lock a heartbeat waits on.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE TABLE pystatus.job_locks (
    job text PRIMARY KEY,
    period interval CHECK (period > interval '0'),
    last_run timestamptz
);
COMMENT ON TABLE pystatus.job_locks IS
    'One row per job that runs one at a time (maintain, sweep, refresh_rollups, evaluate_alerts, '
    'migrate, service_logins): a run locks its row for its transaction. period: how often it is '
    'due (NULL for those run on demand), which `pystatus check` compares with how long a holder '
    'has kept it; last_run: when the newest committed run started.';
INSERT INTO pystatus.job_locks (job, period) VALUES
    ('maintain', interval '1 hour'), ('sweep', interval '1 minute'),
    ('refresh_rollups', interval '1 minute'), ('evaluate_alerts', interval '1 minute'),
    ('migrate', NULL), ('service_logins', NULL);

CREATE TABLE pystatus.limits (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    max_services integer NOT NULL DEFAULT 20000 CHECK (max_services > 0),
    max_batch integer NOT NULL DEFAULT 10000 CHECK (max_batch > 0),
    max_metric_services integer NOT NULL DEFAULT 10000 CHECK (max_metric_services > 0)
);
COMMENT ON TABLE pystatus.limits IS
    'Bounds a writer cannot pass: how many services system_status may hold (a new service past it '
    'is refused, PS009) and how many heartbeats one heartbeat_many() call may carry; and how many '
    'services a Prometheus scrape has series of (the rest are counted). Set with '
    'pystatus.set_limits().';
INSERT INTO pystatus.limits DEFAULT VALUES;

-- The alert queue read by index: claiming a few messages read every pending
-- message, twice over, to find each channel's and service's first; and
-- summaries, one message for many services of a channel that alert at once.
-- depends: 0010_job_locks
--
-- One new column, no default: nothing rewritten. The indexes cover pending
-- messages only and are built here: heartbeats never touch the alert tables,
-- and alert workers wait for this transaction.

SET LOCAL search_path = pg_catalog, pg_temp;

ALTER TABLE pystatus.alert_messages ADD COLUMN services varchar(64)[];
COMMENT ON COLUMN pystatus.alert_messages.services IS
    'A summary''s services (service_name NULL): one message for many services of a channel that '
    'alerted at once. NULL for a message about one service, and for a test.';

DROP INDEX pystatus.alert_messages_due;
CREATE INDEX alert_messages_due ON pystatus.alert_messages (channel, next_attempt_at, id)
    WHERE state = 'pending';
COMMENT ON INDEX pystatus.alert_messages_due IS
    'Each channel''s pending messages in the order they are due: what claim_alert_messages() takes.';
CREATE INDEX alert_messages_pending_service ON pystatus.alert_messages (channel, service_name, id)
    WHERE state = 'pending';
COMMENT ON INDEX pystatus.alert_messages_pending_service IS
    'Each channel''s pending messages by service (summaries under NULL): whether an earlier one about '
    'the same service is still pending (_alert_in_turn()).';
CREATE INDEX alert_messages_sending ON pystatus.alert_messages (channel)
    WHERE state = 'pending' AND claimed_until IS NOT NULL;
COMMENT ON INDEX pystatus.alert_messages_sending IS
    'The messages claimed and not yet reported: how many of a channel''s are being sent.';

-- Messages are written by evaluate_alerts() itself now, in one statement.
DROP FUNCTION IF EXISTS pystatus._queue_alert(text, text, bigint, text, text, text, timestamptz, timestamptz, integer);
DROP FUNCTION IF EXISTS pystatus._alert_body(text, text, bigint, text, text, text, timestamptz, timestamptz, integer);
-- evaluate_alerts() reads the events of all services at once, and raw history
-- only where they do not say (_spell_began_in_history()).
DROP FUNCTION IF EXISTS pystatus._spell_began(text, boolean);

-- The dashboard reads the fleet a page at a time: service_overview() takes a
-- page's bounds (its definition is in 55_dashboard.sql), so the one without
-- arguments goes.
-- depends: 0011_alert_queue

SET LOCAL search_path = pg_catalog, pg_temp;

DROP FUNCTION IF EXISTS pystatus.service_overview();

-- A scrape's shapes as Prometheus wants them: a service's status in a 0/1
-- family of its own and the latency as two gauges, so metrics() has no
-- quantile column any more (its definition is in 85_metrics.sql).
-- depends: 0012_overview_pages

SET LOCAL search_path = pg_catalog, pg_temp;

DROP FUNCTION IF EXISTS pystatus.metrics();

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
            -- (75_alerts.sql), in this same transaction; stale written by the
            -- sweeper (the time kept) is silence, dated at the deadline.
            IF v_row.status OPERATOR(pg_catalog.<>) v_row.old_status THEN
                INSERT INTO pystatus.status_events (service_name, at, from_status, to_status, cause)
                SELECT v_row.service_name,
                       CASE WHEN s.silence
                            THEN v_row.last_heartbeat OPERATOR(pg_catalog.+) coalesce(e.expected_interval, interval '60 seconds')
                                 OPERATOR(pg_catalog.+) coalesce(e.grace, interval '60 seconds')
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
                        THEN n.last_heartbeat OPERATOR(pg_catalog.+) coalesce(e.expected_interval, interval '60 seconds')
                             OPERATOR(pg_catalog.+) coalesce(e.grace, interval '60 seconds')
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
    v_starts timestamptz[];
BEGIN
    -- Serialized with maintain(), which calls it too: never two at once.
    PERFORM pystatus._wait_job_lock('maintain');
    v_starts := pystatus._missing_history_partitions(since, until);
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
    -- Serialized with maintain(), which calls it too: never two at once.
    PERFORM pystatus._wait_job_lock('maintain');
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

-- Migrations that index history (0005_compact_history, 0008_history_time_index)
-- build the index at once only on partitions without rows; `pystatus migrate`
-- builds the rest concurrently, one at a time (pystatus/migrations.py), from
-- this list, and resumes from it if stopped.
CREATE OR REPLACE FUNCTION pystatus._history_indexes_pending(
    OUT parent_index name, OUT schema_name name, OUT table_name name, OUT index_name name,
    OUT index_state text, OUT definition text)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.parent_index, n.nspname, c.relname, i.name,
           CASE WHEN x.indexrelid IS NULL THEN 'missing'
                WHEN NOT x.indisvalid THEN 'invalid'
                ELSE 'unattached' END,
           d.definition
    FROM (VALUES ('system_status_history_service_hour'::name, '_service_hour',
                  '(service_name, pystatus._history_hour(heartbeat_timestamp))'),
                 ('system_status_history_time'::name, '_time',
                  'USING brin (pystatus._history_minute(heartbeat_timestamp)) WITH (pages_per_range = 32, autosummarize = on)'))
         AS d(parent_index, suffix, definition)
    CROSS JOIN pg_inherits AS p
    JOIN pg_class AS c ON c.oid = p.inhrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL (SELECT (left(c.relname, 50) || d.suffix)::name AS name) AS i
    LEFT JOIN pg_class AS ic ON ic.relname = i.name AND ic.relnamespace = c.relnamespace
    LEFT JOIN pg_index AS x ON x.indexrelid = ic.oid
    WHERE p.inhparent = 'public.system_status_history'::regclass
      AND to_regclass('public.' || d.parent_index) IS NOT NULL
      AND NOT EXISTS (SELECT FROM pg_inherits AS ip JOIN pg_index AS px ON px.indexrelid = ip.inhrelid
                      WHERE ip.inhparent = to_regclass('public.' || d.parent_index)
                        AND px.indrelid = c.oid)
    ORDER BY d.parent_index, c.relname;
$$;
COMMENT ON FUNCTION pystatus._history_indexes_pending() IS
    'History partitions still without their part of an index of history (left by the migration '
    'that added it on partitions that had rows): the parent index, the partition, the state of the '
    'index `pystatus migrate` builds for it (missing, invalid: a build that stopped, or '
    'unattached) and its definition.';

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

CREATE OR REPLACE FUNCTION pystatus._maintenance_due()
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET "TimeZone" = 'UTC'
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_retention interval := pystatus.history_retention();
    v_range record := pystatus._premade_range();
BEGIN
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'expired', (SELECT jsonb_agg(c.relname ORDER BY p.starts)
                    FROM pystatus.history_partitions AS p JOIN pg_class AS c ON c.oid = p.partition
                    WHERE NOT p.is_default AND p.ends < now() - v_retention),
        'missing', CASE WHEN v_range.oldest < v_range.premade_until THEN to_jsonb(
                       pystatus._missing_history_partitions(v_range.oldest, v_range.premade_until)) END,
        'default_rows', nullif(pystatus.history_default_rows(), 0)));
END;
$$;
COMMENT ON FUNCTION pystatus._maintenance_due() IS
    'What maintain() has to do now: partitions past retention, partition starts missing up to the '
    'premake horizon, rows in the default partition. Empty when nothing is due.';

-- search_path: not pinned, because it calls pg_partman (see above).
CREATE OR REPLACE FUNCTION pystatus.maintain()
RETURNS jsonb
LANGUAGE plpgsql
SET "TimeZone" = 'UTC'
-- Every heartbeat queues behind a lock request that waits, so maintenance
-- waits at most this long for a lock at a time (see the retries below).
SET lock_timeout = '50ms'
AS $$
DECLARE
    v_attempt integer;
    v_locked boolean := false;
    v_before text[];
    v_moved bigint := 0;
    v_range record;
    v_due jsonb;
BEGIN
    IF pg_catalog.pg_is_in_recovery() THEN
        RETURN pg_catalog.jsonb_build_object('skipped', 'this server is a replica');
    END IF;
    -- One maintenance at a time (pg_cron's and a DBA's by hand, or two
    -- schedulers): the second returns at once instead of deadlocking with the first.
    IF NOT pystatus._try_job_lock('maintain') THEN
        RETURN pg_catalog.jsonb_build_object('skipped', 'another maintenance is running');
    END IF;
    v_before := pystatus._history_partition_names();
    -- Events and alert messages expire with history (plain deletes: no lock a
    -- status write waits for).
    PERFORM pystatus._expire_alerts();
    v_due := pystatus._maintenance_due();
    IF v_due OPERATOR(pg_catalog.=) '{}'::pg_catalog.jsonb THEN
        RETURN pystatus._maintenance_report(v_before, 0);
    END IF;

    -- Creating and dropping partitions takes ACCESS EXCLUSIVE on history; taken
    -- here first, so that pg_partman then waits for nothing. While another
    -- transaction uses history (the rollups job reading it, a report, a service
    -- heartbeating inside a long transaction) heartbeats queue behind the
    -- waiting request: so it waits 50 ms at a time, ten times, 0.2 s apart
    -- (heartbeats went on in between), then leaves the work to its next run.
    -- At 1,000 heartbeats/s a single 500 ms wait held about 500 of them.
    FOR v_attempt IN 1..10 LOOP
        BEGIN
            LOCK TABLE public.system_status_history IN ACCESS EXCLUSIVE MODE;
            v_locked := true;
            EXIT;
        EXCEPTION WHEN lock_not_available THEN
            PERFORM pg_catalog.pg_sleep(0.2);
        END;
    END LOOP;
    IF NOT v_locked THEN
        RETURN pystatus._maintenance_report(v_before, 0)
               OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                   'deferred', v_due,
                   'why', 'system_status_history is in use by other transactions: the next run tries again');
    END IF;

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
    '(or `pystatus maintain`); returns the partitions created and dropped and the rows moved. '
    'Never makes a heartbeat wait more than 50 ms for its lock (ten tries over about 2.5 s): while '
    'other transactions hold the history table it returns what it deferred, and the next run '
    'tries again. A second run '
    'at the same time returns at once (skipped).';

-- Maintenance windows and snoozes: planned quiet times, one-off or recurring
-- in a time zone's wall clock. Inside a maintenance window a service's down
-- time counts as maintenance in every answer (segments(), and so uptime,
-- incidents, rollups, live_status) and its alerts are muted; a snooze mutes
-- alerts only. The table is in 20_tables.sql.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION pystatus._is_time_zone(time_zone text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM timestamp '2000-01-01' AT TIME ZONE time_zone;
    RETURN true;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN false;
END;
$$;
COMMENT ON FUNCTION pystatus._is_time_zone(text) IS
    'Whether PostgreSQL knows this time zone (a name such as Europe/Berlin, or an abbreviation).';

-- Windows and alert rules name services by pattern, as allowances do: a
-- service name where * stands for any characters.
CREATE OR REPLACE FUNCTION pystatus._check_service_pattern(service_pattern text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF service_pattern IS NULL OR service_pattern = ''
       OR NOT pystatus.is_valid_service_name(replace(service_pattern, '*', 'x')) THEN
        RAISE EXCEPTION 'invalid service pattern %: a service name, where * stands for any characters',
            quote_nullable(service_pattern) USING ERRCODE = 'PS001';
    END IF;
END;
$$;
COMMENT ON FUNCTION pystatus._check_service_pattern(text) IS
    'Raises PS001 unless the pattern is a service name in which * stands for any characters.';

CREATE OR REPLACE FUNCTION pystatus.maintenance_occurrences(since timestamptz, until timestamptz)
RETURNS TABLE (window_id bigint, service_pattern text, like_pattern text, kind text,
               starts timestamptz, ends timestamptz, reason text)
LANGUAGE sql STABLE
-- Runs as its owner: live_status calls it with a reader's rights.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT w.id, w.service_pattern, w.like_pattern, w.kind, o.starts, o.ends, w.reason
    FROM pystatus.maintenance_windows AS w
    CROSS JOIN LATERAL (
        SELECT w.starts, w.ends WHERE w.every IS NULL
        UNION ALL
        -- Repeats start at the same wall-clock time in the window's zone and last
        -- as long as the first (a start that falls in a daylight saving gap moves
        -- forward with the clock). Every is a whole number of hours, days or
        -- weeks, so the n-th repeat is within an hour of starts + n * every: one
        -- more on each side.
        SELECT r.starts, r.starts + make_interval(secs => extract(epoch FROM w.ends - w.starts))
        FROM generate_series(
            greatest(0, floor(extract(epoch FROM maintenance_occurrences.since - w.ends)
                              / extract(epoch FROM w.every))::bigint - 1),
            ceil(extract(epoch FROM maintenance_occurrences.until - w.starts)
                 / extract(epoch FROM w.every))::bigint + 1) AS n
        CROSS JOIN LATERAL (
            SELECT ((w.starts AT TIME ZONE w.time_zone) + n * w.every) AT TIME ZONE w.time_zone AS starts
        ) AS r
        WHERE w.every IS NOT NULL
    ) AS o
    WHERE o.starts < maintenance_occurrences.until AND o.ends > maintenance_occurrences.since
      AND (w.repeat_until IS NULL OR o.starts < w.repeat_until);
$$;
COMMENT ON FUNCTION pystatus.maintenance_occurrences(timestamptz, timestamptz) IS
    'Every occurrence of the maintenance windows and snoozes that overlaps [since, until), '
    'recurring windows expanded in their time zone.';

CREATE OR REPLACE FUNCTION pystatus._maintenance_ranges(service_name text, since timestamptz, until timestamptz)
RETURNS tstzmultirange
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT range_agg(tstzrange(o.starts, o.ends))
    FROM pystatus.maintenance_occurrences(_maintenance_ranges.since, _maintenance_ranges.until) AS o
    WHERE o.kind = 'maintenance' AND _maintenance_ranges.service_name LIKE o.like_pattern;
$$;
COMMENT ON FUNCTION pystatus._maintenance_ranges(text, timestamptz, timestamptz) IS
    'The times in [since, until) that a maintenance window covers for this service (NULL: none).';

-- Where rollups may be recomputed from: the hour of a service's oldest raw
-- row, or the hour after it when an older hour was rolled up (that hour's
-- start is carried in a status whose row has expired). Before it, the rollups
-- are all that is left, and are kept as they are.
CREATE OR REPLACE FUNCTION pystatus._rollups_recomputable_from(service_name text)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN EXISTS (SELECT FROM pystatus.rollup_hourly AS r
                             WHERE r.service_name = _rollups_recomputable_from.service_name AND r.bucket < o.hour)
                THEN o.hour + interval '1 hour' ELSE o.hour END
    FROM (SELECT min(pystatus._history_hour(h.heartbeat_timestamp)) AS hour
          FROM public.system_status_history AS h
          WHERE h.service_name = _rollups_recomputable_from.service_name) AS o
    WHERE o.hour IS NOT NULL;
$$;
COMMENT ON FUNCTION pystatus._rollups_recomputable_from(text) IS
    'The first hour whose rollups can be recomputed from the service''s raw history (NULL: it has none).';

-- A window changes how the past reads: the rollups of the hours it covers are
-- recomputed, for the services it matches, where raw history is still kept.
CREATE OR REPLACE FUNCTION pystatus._windows_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO pystatus.rollup_dirty (service_name, since)
    SELECT s.service_name, greatest(w.starts, f.since)
    FROM (SELECT OLD.starts, OLD.like_pattern, OLD.kind WHERE TG_OP <> 'INSERT'
          UNION ALL
          SELECT NEW.starts, NEW.like_pattern, NEW.kind WHERE TG_OP <> 'DELETE') AS w(starts, like_pattern, kind)
    JOIN public.system_status AS s ON s.service_name LIKE w.like_pattern
    CROSS JOIN LATERAL (SELECT pystatus._rollups_recomputable_from(s.service_name)) AS f(since)
    WHERE w.kind = 'maintenance' AND w.starts < now() AND f.since IS NOT NULL;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION pystatus._windows_changed() IS
    'Trigger function: marks the rollups of the services a changed maintenance window matches for '
    'recomputation from the window''s start (never before their oldest raw history row).';

CREATE OR REPLACE TRIGGER maintenance_windows_changed
    AFTER INSERT OR UPDATE OR DELETE ON pystatus.maintenance_windows
    FOR EACH ROW EXECUTE FUNCTION pystatus._windows_changed();
COMMENT ON TRIGGER maintenance_windows_changed ON pystatus.maintenance_windows IS
    'Past hours read differently once a window covers them: their rollups are recomputed.';

CREATE OR REPLACE FUNCTION pystatus.add_maintenance(
    service_pattern text,
    starts timestamptz,
    ends timestamptz,
    every interval DEFAULT NULL,
    time_zone text DEFAULT 'UTC',
    repeat_until timestamptz DEFAULT NULL,
    reason text DEFAULT NULL,
    kind text DEFAULT 'maintenance')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM pystatus._check_service_pattern(add_maintenance.service_pattern);
    IF add_maintenance.starts IS NULL OR add_maintenance.ends IS NULL
       OR NOT isfinite(add_maintenance.starts) OR NOT isfinite(add_maintenance.ends)
       OR add_maintenance.ends <= add_maintenance.starts THEN
        RAISE EXCEPTION 'invalid window % to %: both finite, and the end after the start',
            add_maintenance.starts, add_maintenance.ends USING ERRCODE = 'PS005';
    END IF;
    IF add_maintenance.every IS NOT NULL AND (
           add_maintenance.every < interval '1 hour'
           OR extract(month FROM add_maintenance.every) <> 0 OR extract(year FROM add_maintenance.every) <> 0
           OR add_maintenance.ends - add_maintenance.starts > add_maintenance.every) THEN
        RAISE EXCEPTION 'invalid repeat every %: hours, days or weeks, at least 1 hour and at least the window''s '
                        'length (%)', add_maintenance.every, add_maintenance.ends - add_maintenance.starts
            USING ERRCODE = 'PS005';
    END IF;
    IF add_maintenance.repeat_until IS NOT NULL AND add_maintenance.every IS NULL THEN
        RAISE EXCEPTION 'invalid repeat_until %: only a recurring window (every) has one', add_maintenance.repeat_until
            USING ERRCODE = 'PS005';
    END IF;
    IF add_maintenance.time_zone IS NULL OR NOT pystatus._is_time_zone(add_maintenance.time_zone) THEN
        RAISE EXCEPTION 'invalid time zone %', quote_nullable(add_maintenance.time_zone) USING ERRCODE = 'PS005';
    END IF;
    IF add_maintenance.kind IS NULL OR add_maintenance.kind NOT IN ('maintenance', 'snooze') THEN
        RAISE EXCEPTION 'invalid kind %: maintenance or snooze', quote_nullable(add_maintenance.kind)
            USING ERRCODE = 'PS005';
    END IF;
    IF octet_length(add_maintenance.reason) > 1024 THEN
        RAISE EXCEPTION 'invalid reason: longer than 1024 bytes' USING ERRCODE = 'PS005';
    END IF;
    INSERT INTO pystatus.maintenance_windows
        (service_pattern, kind, starts, ends, every, repeat_until, time_zone, reason)
    VALUES (add_maintenance.service_pattern, add_maintenance.kind, add_maintenance.starts, add_maintenance.ends,
            add_maintenance.every, add_maintenance.repeat_until, add_maintenance.time_zone, add_maintenance.reason)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION pystatus.add_maintenance(text, timestamptz, timestamptz, interval, text, timestamptz, text, text) IS
    'Plans a maintenance window (or, kind snooze, a time when alerts are muted) for the services '
    'matching service_pattern (* for any characters), from starts to ends, repeating every that '
    'long (hours, days or weeks) in time_zone''s wall clock when every is given. Returns its id; '
    'PS001/PS005 on bad input.';

CREATE OR REPLACE FUNCTION pystatus.snooze(service_pattern text, duration interval, reason text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF snooze.duration IS NULL OR snooze.duration <= interval '0' OR snooze.duration > interval '366 days' THEN
        RAISE EXCEPTION 'invalid duration %: more than 0 and at most 366 days', snooze.duration
            USING ERRCODE = 'PS005';
    END IF;
    RETURN pystatus.add_maintenance(snooze.service_pattern, now(), now() + snooze.duration,
                                    reason => snooze.reason, kind => 'snooze');
END;
$$;
COMMENT ON FUNCTION pystatus.snooze(text, interval, text) IS
    'Mutes the alerts of the services matching service_pattern for duration, from now; the answers '
    'are unchanged (a snoozed service that is down is still down). Returns the snooze''s id.';

CREATE OR REPLACE FUNCTION pystatus.remove_maintenance(window_id bigint)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH gone AS (DELETE FROM pystatus.maintenance_windows AS w WHERE w.id = remove_maintenance.window_id
                  RETURNING 1)
    SELECT count(*) > 0 FROM gone;
END;
COMMENT ON FUNCTION pystatus.remove_maintenance(bigint) IS
    'Removes a maintenance window or snooze (all its repeats); false if there was none with that id. '
    'Past hours it covered count as they were reported again.';

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

------------------------------------------------------------------------------
-- Live status and the sweeper
------------------------------------------------------------------------------

CREATE OR REPLACE VIEW pystatus.live_status AS
-- The maintenance windows open now, read once (usually none), and the
-- services inside them: joined by hash, not looked up row by row.
WITH windows_now AS MATERIALIZED (
    SELECT o.like_pattern, o.ends
    FROM pystatus.maintenance_occurrences(now(), now() + interval '1 microsecond') AS o
    WHERE o.kind = 'maintenance'
), in_window AS (
    SELECT s.service_name, max(w.ends) AS until
    FROM windows_now AS w JOIN public.system_status AS s ON s.service_name LIKE w.like_pattern
    GROUP BY s.service_name
)
SELECT
    s.service_name,
    CASE WHEN m.until IS NOT NULL AND pystatus.status_category(r.status) = 'down'
         THEN 'maintenance' ELSE r.status END::varchar(16) AS effective_status,
    s.status AS reported_status,
    s.last_heartbeat,
    -- last_heartbeat is finite (a constraint since 0002_finite_times), so the
    -- interval is too. date_part, not extract, which computes a numeric first.
    date_part('epoch', now() - s.last_heartbeat) AS seconds_since,
    s.current_task,
    s.latency_ms,
    d.expected_interval,
    d.grace,
    x.stale_after,
    m.until AS maintenance_until
FROM public.system_status AS s
LEFT JOIN pystatus.service_expectations AS e ON e.service_name = s.service_name
-- The defaults for services without expectations, written once.
CROSS JOIN LATERAL (SELECT coalesce(e.expected_interval, interval '60 seconds') AS expected_interval,
                           coalesce(e.grace, interval '60 seconds') AS grace) AS d
CROSS JOIN LATERAL (SELECT s.last_heartbeat + d.expected_interval + d.grace AS stale_after) AS x
CROSS JOIN LATERAL (SELECT CASE WHEN pystatus.goes_stale(s.status) AND now() > x.stale_after
                                THEN 'stale' ELSE s.status::text END AS status) AS r
LEFT JOIN in_window AS m ON m.service_name = s.service_name;
COMMENT ON VIEW pystatus.live_status IS
    'Every service as a dashboard should show it: effective_status is stale once the service '
    'has been silent past stale_after (last_heartbeat + expected_interval + grace), even if it '
    'never said so, and maintenance instead of down or stale inside a maintenance window (open '
    'until maintenance_until). Reads system_status and the windows open now only.';

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
      AND pystatus._history_hour(h.heartbeat_timestamp)
          BETWEEN pystatus._history_hour(history.since) AND pystatus._history_hour(history.until)
      AND h.heartbeat_timestamp >= history.since
      AND h.heartbeat_timestamp < history.until
    ORDER BY h.heartbeat_timestamp DESC, h.ctid DESC;
$$;
COMMENT ON FUNCTION pystatus.history(text, timestamptz, timestamptz) IS
    'One service''s history rows in [since, until), newest first.';

-- The query is in PL/pgSQL, which keeps its plan for the session: an SQL
-- function with a pinned search_path is not inlined, and is planned again at
-- every call (about 5 ms for this query, most of a one-hour answer). It reads
-- any number of spans at once (a multirange): the two raw edges of an uptime,
-- or only the hours in which rollups saw a service down, for its incidents.
-- segments() below is its public face, for one span, under the API's names.
-- JIT off: the planner cannot tell how many spans and services a call reads,
-- and its estimates for the fleet (millions) made PostgreSQL compile the query
-- to machine code at every custom plan, 3 s against 0.1 s without.
CREATE OR REPLACE FUNCTION pystatus._segments(service_name text, spans tstzmultirange)
RETURNS TABLE (service text, status text, starts timestamptz, ends timestamptz, continued boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
SET plan_cache_mode = auto
AS $$
#variable_conflict use_column
DECLARE
    v_kept_until timestamptz;
BEGIN
    -- The current hour's rollup keeps each service's row in force where it
    -- stops (rollup_current.last_at): a span opening there starts from it, not
    -- from a search of history. Unless a late row may have changed it since:
    -- then until the next refresh (a minute) history is searched. A STABLE
    -- function reads with its caller's one snapshot: current_until and the
    -- kept rows are read as of the same moment, even if a refresh commits between.
    SELECT s.current_until INTO v_kept_until
    FROM pystatus.rollup_state AS s
    WHERE NOT EXISTS (SELECT FROM pystatus.rollup_dirty AS d WHERE d.since < s.current_until);
    -- One service over a short time (the edge of an uptime, an incident's
    -- hours) costs more to plan than to run: planning visits every partition
    -- of history, 3.5 ms of a 4.5 ms call. Those calls run the session's
    -- generic plan; the fleet and long reads, which cost more to run and
    -- run faster on a plan made for their spans, are planned at each call.
    PERFORM set_config('plan_cache_mode',
                       CASE WHEN _segments.service_name IS NOT NULL
                                 AND (SELECT sum(upper(r.span) - lower(r.span)) FROM unnest(_segments.spans) AS r(span))
                                     <= interval '1 day'
                            THEN 'force_generic_plan' ELSE 'force_custom_plan' END,
                       true);
    RETURN QUERY
    WITH services AS (
        -- Two branches, not one test with OR: the session's generic plan
        -- then finds one service by its key rather than scanning them all.
        SELECT l.service_name::text AS service_name, l.expected_interval + l.grace AS patience
        FROM pystatus.live_status AS l
        WHERE _segments.service_name IS NULL
        UNION ALL
        SELECT l.service_name::text, l.expected_interval + l.grace
        FROM pystatus.live_status AS l
        WHERE l.service_name = _segments.service_name
    ), bounds AS (
        -- Each span, up to now; a span is named by its start.
        SELECT lower(r.span) AS since, least(upper(r.span), now()) AS until
        FROM unnest(_segments.spans) AS r(span)
    ), beats AS (
        -- The row in force when each span opens: the newest before it (rows of
        -- one time are in one partition, where ctid orders them as written).
        SELECT sv.service_name, sv.patience, b.since AS span, h.heartbeat_timestamp AS at, h.ctid AS written,
               h.status::text
        FROM services AS sv
        CROSS JOIN bounds AS b
        CROSS JOIN LATERAL (
            (SELECT c.last_at AS heartbeat_timestamp, NULL::tid AS ctid, c.last_status AS status
             FROM pystatus.rollup_current AS c
             WHERE b.since = v_kept_until AND c.service_name = sv.service_name AND c.last_at IS NOT NULL)
            UNION ALL
            -- Else looked for in the hour before first, where it nearly always
            -- is: that reads the partition holding it, where a search of all of
            -- history opens every partition's index.
            (SELECT h1.heartbeat_timestamp, h1.ctid, h1.status FROM public.system_status_history AS h1
             WHERE h1.service_name = sv.service_name
               AND pystatus._history_hour(h1.heartbeat_timestamp)
                   BETWEEN pystatus._history_hour(b.since - interval '1 hour') AND pystatus._history_hour(b.since)
               AND h1.heartbeat_timestamp >= b.since - interval '1 hour' AND h1.heartbeat_timestamp < b.since
             ORDER BY pystatus._history_hour(h1.heartbeat_timestamp) DESC, h1.heartbeat_timestamp DESC,
                      h1.ctid DESC
             LIMIT 1)
            UNION ALL
            (SELECT h2.heartbeat_timestamp, h2.ctid, h2.status FROM public.system_status_history AS h2
             WHERE h2.service_name = sv.service_name
               AND pystatus._history_hour(h2.heartbeat_timestamp) <= pystatus._history_hour(b.since)
               AND h2.heartbeat_timestamp < b.since
             ORDER BY pystatus._history_hour(h2.heartbeat_timestamp) DESC, h2.heartbeat_timestamp DESC,
                      h2.ctid DESC
             LIMIT 1)
            LIMIT 1
        ) AS h
        UNION ALL
        -- One service: one index range scan per span, never a scan of whole
        -- partitions (OFFSET 0 keeps the planner from flattening it into a hash join).
        SELECT sv.service_name, sv.patience, b.since, h.heartbeat_timestamp, h.ctid, h.status::text
        FROM services AS sv
        CROSS JOIN bounds AS b
        CROSS JOIN LATERAL (
            SELECT h3.heartbeat_timestamp, h3.ctid, h3.status FROM public.system_status_history AS h3
            WHERE h3.service_name = sv.service_name
              AND pystatus._history_hour(h3.heartbeat_timestamp)
                  BETWEEN pystatus._history_hour(b.since) AND pystatus._history_hour(b.until)
              AND h3.heartbeat_timestamp >= b.since AND h3.heartbeat_timestamp < b.until
            OFFSET 0
        ) AS h
        WHERE _segments.service_name IS NOT NULL
        UNION ALL
        -- The fleet: each span's rows of every service at once, by time (the
        -- BRIN index system_status_history_time, by _history_minute(): the
        -- last minutes are the last pages), where a range scan per service
        -- read each one's whole hours. Joined to the services inside each span
        -- (OFFSET 0: not flattened): the planner cannot tell how many rows a
        -- span holds, and, joining outside, it hashed them, hundreds of
        -- milliseconds for a few thousand.
        SELECT h.service_name, h.patience, b.since, h.heartbeat_timestamp, h.ctid, h.status::text
        FROM bounds AS b
        CROSS JOIN LATERAL (
            SELECT sv.service_name, sv.patience, h4.heartbeat_timestamp, h4.ctid, h4.status
            FROM public.system_status_history AS h4
            JOIN services AS sv ON sv.service_name = h4.service_name
            WHERE pystatus._history_minute(h4.heartbeat_timestamp)
                  BETWEEN pystatus._history_minute(b.since) AND pystatus._history_minute(b.until)
              AND h4.heartbeat_timestamp >= b.since AND h4.heartbeat_timestamp < b.until
            OFFSET 0
        ) AS h
        WHERE _segments.service_name IS NULL
    ), ordered AS (
        SELECT beats.*, b.until,
               coalesce(lead(beats.at) OVER (PARTITION BY beats.service_name, beats.span
                                             ORDER BY beats.at, beats.written),
                        b.until) AS next_at
        FROM beats JOIN bounds AS b ON b.since = beats.span
    ), pieces AS (
        SELECT o.service_name, o.span, o.until, o.status, o.at AS starts,
               CASE WHEN pystatus.goes_stale(o.status) THEN least(o.next_at, o.at + o.patience)
                    ELSE o.next_at END AS ends
        FROM ordered AS o
        UNION ALL
        SELECT o.service_name, o.span, o.until, 'stale', o.at + o.patience, o.next_at
        FROM ordered AS o
        WHERE pystatus.goes_stale(o.status) AND o.at + o.patience < o.next_at
    ), clipped AS (
        SELECT p.service_name, p.span, p.status, greatest(p.starts, p.span) AS starts,
               least(p.ends, p.until) AS ends, p.starts < p.span AS continued
        FROM pieces AS p
        WHERE least(p.ends, p.until) > greatest(p.starts, p.span)
    ), windows AS (
        -- What maintenance windows cover, per service and span (usually
        -- nothing): down time inside them reads as maintenance.
        SELECT sv.service_name, b.since AS span, range_agg(tstzrange(o.starts, o.ends)) AS covered
        FROM bounds AS b
        CROSS JOIN LATERAL pystatus.maintenance_occurrences(b.since, b.until) AS o
        JOIN services AS sv ON sv.service_name LIKE o.like_pattern
        WHERE o.kind = 'maintenance'
        GROUP BY sv.service_name, b.since
    ), marked AS (
        SELECT c.service_name, c.status, c.starts, c.ends, c.continued, w.covered,
               w.covered IS NOT NULL AND pystatus.status_category(c.status) = 'down'
                   AND tstzrange(c.starts, c.ends) && w.covered AS in_window
        FROM clipped AS c LEFT JOIN windows AS w ON w.service_name = c.service_name AND w.span = c.span
    )
    SELECT m.service_name, m.status, m.starts, m.ends, m.continued
    FROM marked AS m WHERE NOT m.in_window
    UNION ALL
    SELECT m.service_name, CASE WHEN part.inside THEN 'maintenance' ELSE m.status END,
           lower(part.span), upper(part.span), m.continued AND lower(part.span) = m.starts
    FROM marked AS m
    CROSS JOIN LATERAL (
        SELECT r.span, false FROM unnest(tstzmultirange(tstzrange(m.starts, m.ends)) - m.covered) AS r(span)
        UNION ALL
        SELECT r.span, true FROM unnest(tstzmultirange(tstzrange(m.starts, m.ends)) * m.covered) AS r(span)
    ) AS part(span, inside)
    WHERE m.in_window;
END;
$$;
COMMENT ON FUNCTION pystatus._segments(text, tstzmultirange) IS
    'The query of pystatus.segments() over any number of spans (each read as its own window), '
    'with its plan kept for the session.';

-- A window whose end is before its start is empty, as before (a range would refuse it).
CREATE OR REPLACE FUNCTION pystatus.segments(service_name text, since timestamptz, until timestamptz)
RETURNS TABLE (service_name text, status text, starts timestamptz, ends timestamptz, continued boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT g.service, g.status, g.starts, g.ends, g.continued
    FROM pystatus._segments(segments.service_name,
                            tstzmultirange(tstzrange(segments.since, greatest(segments.since, segments.until)))) AS g;
$$;
COMMENT ON FUNCTION pystatus.segments(text, timestamptz, timestamptz) IS
    'History as time-weighted segments within [since, least(until, now())): each row''s status '
    'until the next row, and stale from the deadline on when the service fell silent; down time '
    'inside a maintenance window reads as maintenance. '
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

-- Which parts of a window [since, least(until, now())) the rollups hold, in
-- order (each part may be empty):
--   [since, edge_from)          raw history
--   [edge_from, hours_from)     the rest of since's hour: its rollup and spans
--   [hours_from, hours_to)      whole hours: rollups (uptime: two rows a service, by running totals)
--   [hours_to, current_to)      the current hour so far: rollup_current (times only)
--   [current_to, until)         raw history
-- Rollups hold the hours before rolled_until and before the hour of any late
-- row waiting for the next refresh; spans, the hours from spans_from on.
CREATE OR REPLACE FUNCTION pystatus._rollup_coverage(
    service_name text, since timestamptz, until timestamptz,
    OUT edge_from timestamptz, OUT hours_from timestamptz, OUT hours_to timestamptz,
    OUT current_to timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_origin constant timestamptz := pystatus._bucket_origin();
    v_until constant timestamptz := greatest(least(_rollup_coverage.until, now()), _rollup_coverage.since);
    v_state pystatus.rollup_state;
    v_dirty timestamptz;
BEGIN
    SELECT * INTO v_state FROM pystatus.rollup_state;
    SELECT min(d.since) INTO v_dirty FROM pystatus.rollup_dirty AS d
    WHERE _rollup_coverage.service_name IS NULL OR d.service_name = _rollup_coverage.service_name;
    hours_from := date_bin('1 hour', _rollup_coverage.since, v_origin);
    IF hours_from < _rollup_coverage.since THEN
        hours_from := hours_from + interval '1 hour';
    END IF;
    hours_to := least(date_bin('1 hour', v_until, v_origin), v_state.rolled_until,
                      date_bin('1 hour', v_dirty, v_origin));
    IF hours_from > hours_to THEN  -- no hour's end that rollups hold: all raw
        edge_from := _rollup_coverage.since;
        hours_from := _rollup_coverage.since;
        hours_to := _rollup_coverage.since;
        current_to := _rollup_coverage.since;
        RETURN;
    END IF;
    edge_from := CASE WHEN hours_from - interval '1 hour' >= v_state.spans_from
                      THEN _rollup_coverage.since ELSE hours_from END;
    current_to := CASE WHEN hours_to = v_state.rolled_until AND v_state.current_from = v_state.rolled_until
                            AND v_state.current_until <= v_until
                            AND (v_dirty IS NULL OR v_dirty >= v_state.current_until)
                       THEN v_state.current_until ELSE hours_to END;
END;
$$;
COMMENT ON FUNCTION pystatus._rollup_coverage(text, timestamptz, timestamptz) IS
    'Splits a window into what raw history, the spans of since''s hour, whole rolled-up hours and '
    'the current hour''s rollup hold, for the service (NULL: all): the boundaries, in order.';

-- Incidents are read from the rollups' spans (the current hour's too); raw
-- history only at the window's edges and, in hours rolled up before spans were kept, in those
-- whose rollups saw the service down (an incident never crosses a skipped
-- hour, which rollups saw wholly up).
-- PL/pgSQL, as _segments(): a plan per call that knows whether one service or
-- all are asked for (an SQL function's plan does not, and scans every
-- service's rollups), and no JIT compilation for the planner's guesses. A
-- plan per call, always: after five calls PostgreSQL may keep a generic plan
-- for the session, and a dashboard's connection that read the fleet then
-- read one service's incidents in 11-24 ms instead of 2.
CREATE OR REPLACE FUNCTION pystatus._incidents(service_name text, since timestamptz, until timestamptz)
RETURNS TABLE (service text, started timestamptz, ended timestamptz, duration interval, cause text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
SET plan_cache_mode = force_custom_plan
AS $$
#variable_conflict use_column
DECLARE
    v_cover record;
    v_spans_from timestamptz;
BEGIN
    -- The window's parts, read first: the query below is planned knowing them
    -- (read inside it, from a CTE, they were unknown to the planner, which then
    -- scanned every hourly rollup for hours before spans were kept, even when
    -- there are none: 40 ms of the fleet's incidents at 1,000 services).
    SELECT * INTO v_cover
    FROM pystatus._rollup_coverage(_incidents.service_name, _incidents.since, _incidents.until);
    SELECT s.spans_from INTO v_spans_from FROM pystatus.rollup_state AS s;
    RETURN QUERY
    WITH raw_spans AS (
        SELECT coalesce(range_agg(r.span), '{}') AS spans
        FROM (
            SELECT tstzrange(_incidents.since, v_cover.edge_from) AS span
            UNION ALL
            SELECT tstzrange(v_cover.current_to, greatest(v_cover.current_to, _incidents.until))
            UNION ALL
            SELECT tstzrange(h.bucket, h.bucket + interval '1 hour')
            FROM pystatus.rollup_hourly AS h
            WHERE h.bucket >= v_cover.hours_from AND h.bucket < least(v_cover.hours_to, v_spans_from)
              AND h.down_us > 0
              AND (_incidents.service_name IS NULL OR h.service_name = _incidents.service_name)
        ) AS r
    ), down AS (  -- down time, and the part of it that was silence, as multiranges
        SELECT g.service AS service_name, tstzmultirange(tstzrange(g.starts, g.ends)) AS down,
               CASE WHEN g.status = 'stale' THEN tstzmultirange(tstzrange(g.starts, g.ends))
                    ELSE '{}' END AS silent
        FROM raw_spans AS r
        CROSS JOIN LATERAL pystatus._segments(_incidents.service_name, r.spans) AS g
        WHERE pystatus.status_category(g.status) = 'down'
        UNION ALL
        SELECT sp.service_name::text, sp.down * w.span, sp.silent * w.span
        FROM (SELECT tstzmultirange(tstzrange(v_cover.edge_from, v_cover.hours_to)) AS span) AS w
        JOIN pystatus.rollup_spans AS sp
          ON sp.bucket >= greatest(date_bin('1 hour', v_cover.edge_from, pystatus._bucket_origin()), v_spans_from)
         AND sp.bucket < v_cover.hours_to
        WHERE _incidents.service_name IS NULL OR sp.service_name = _incidents.service_name
        UNION ALL
        -- The current hour so far: its rollup holds [hours_to, current_to).
        SELECT rc.service_name::text, rc.down, rc.silent
        FROM pystatus.rollup_current AS rc
        WHERE v_cover.current_to > v_cover.hours_to
          AND (_incidents.service_name IS NULL OR rc.service_name = _incidents.service_name)
    ), merged AS (  -- touching down times are one incident
        SELECT d.service_name, range_agg(d.down) AS down, range_agg(d.silent) AS silent
        FROM down AS d
        GROUP BY d.service_name
    )
    SELECT m.service_name, lower(i.span),
           CASE WHEN _incidents.until >= now() AND upper(i.span) >= now() THEN NULL ELSE upper(i.span) END,
           upper(i.span) - lower(i.span),
           CASE WHEN coalesce(m.silent @> lower(i.span), false) THEN 'silence' ELSE 'reported down' END
    FROM merged AS m
    CROSS JOIN LATERAL unnest(m.down) AS i(span)
    ORDER BY m.service_name, lower(i.span);
END;
$$;
COMMENT ON FUNCTION pystatus._incidents(text, timestamptz, timestamptz) IS
    'The query of pystatus.incidents(), with a plan per call.';

CREATE OR REPLACE FUNCTION pystatus.incidents(
    service_name text, since timestamptz, until timestamptz DEFAULT now())
RETURNS TABLE (service_name text, started timestamptz, ended timestamptz, duration interval, cause text)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT i.service, i.started, i.ended, i.duration, i.cause
    FROM pystatus._incidents(incidents.service_name, incidents.since, incidents.until) AS i;
$$;
COMMENT ON FUNCTION pystatus.incidents(text, timestamptz, timestamptz) IS
    'Down intervals in [since, until), clipped to it: started, ended (NULL while still down), '
    'duration (so far, when open) and cause (reported down, or silence). "When did librarian '
    'stop responding?" is SELECT * FROM pystatus.incidents(''librarian'', now() - interval ''7 days'').';

------------------------------------------------------------------------------
-- Uptime
------------------------------------------------------------------------------

-- Planned at each call, as _incidents() is, and for the same reasons.
CREATE OR REPLACE FUNCTION pystatus._compute_uptime(
    service_name text, since timestamptz, until timestamptz, use_rollups boolean)
RETURNS SETOF pystatus.uptime_report
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
SET plan_cache_mode = force_custom_plan
AS $$
#variable_conflict use_column
DECLARE
    v_until timestamptz := greatest(least(_compute_uptime.until, now()), _compute_uptime.since);
    v_cover record;
BEGIN
    IF _compute_uptime.since IS NULL OR _compute_uptime.until IS NULL OR NOT isfinite(_compute_uptime.since) OR NOT isfinite(_compute_uptime.until) THEN
        RAISE EXCEPTION 'invalid window [%, %): both ends must be finite', _compute_uptime.since, _compute_uptime.until
            USING ERRCODE = 'PS005';
    END IF;
    IF _compute_uptime.use_rollups THEN
        SELECT * INTO v_cover
        FROM pystatus._rollup_coverage(_compute_uptime.service_name, _compute_uptime.since, _compute_uptime.until);
    ELSE  -- all raw
        SELECT _compute_uptime.since AS edge_from, _compute_uptime.since AS hours_from,
               _compute_uptime.since AS hours_to, _compute_uptime.since AS current_to
        INTO v_cover;
    END IF;

    RETURN QUERY
    WITH services AS (
        SELECT l.service_name::text AS service_name FROM pystatus.live_status AS l
        WHERE _compute_uptime.service_name IS NULL
        UNION ALL
        SELECT _compute_uptime.service_name WHERE _compute_uptime.service_name IS NOT NULL
    ), raw AS (  -- both raw edges in one reading of raw history
        SELECT g.service AS service_name, pystatus.status_category(g.status) AS category,
               pystatus._microseconds(g.ends - g.starts) AS us
        FROM pystatus._segments(_compute_uptime.service_name,
                                tstzmultirange(tstzrange(_compute_uptime.since, v_cover.edge_from),
                                               tstzrange(v_cover.current_to, v_until))) AS g
    ), edge AS (
        -- The rest of since's hour: up, less what its spans hold where it has
        -- them. Nearly every hour is wholly up and has none: the spans are read
        -- only where they exist (measuring them for every service's hour called
        -- a function per row: 3 ms of the fleet's answer).
        SELECT r.service_name::text AS service_name,
               pystatus._microseconds(v_cover.hours_from - v_cover.edge_from) AS up_us,
               0::bigint AS down_us, 0::bigint AS maintenance_us
        FROM pystatus.rollup_hourly AS r
        WHERE v_cover.edge_from < v_cover.hours_from AND r.bucket = v_cover.hours_from - interval '1 hour'
          AND (_compute_uptime.service_name IS NULL OR r.service_name = _compute_uptime.service_name)
        UNION ALL
        SELECT sp.service_name::text, -(p.down_us + p.maintenance_us + p.no_data_us), p.down_us, p.maintenance_us
        FROM (SELECT tstzmultirange(tstzrange(v_cover.edge_from, v_cover.hours_from)) AS span) AS w
        JOIN pystatus.rollup_spans AS sp ON sp.bucket = v_cover.hours_from - interval '1 hour'
        CROSS JOIN LATERAL (
            SELECT coalesce(sum(x.us) FILTER (WHERE x.kind = 'down'), 0) AS down_us,
                   coalesce(sum(x.us) FILTER (WHERE x.kind = 'maintenance'), 0) AS maintenance_us,
                   coalesce(sum(x.us) FILTER (WHERE x.kind = 'no data'), 0) AS no_data_us
            FROM (SELECT 'down', pystatus._microseconds(upper(d.span) - lower(d.span))
                  FROM unnest(sp.down * w.span) AS d(span)
                  UNION ALL
                  SELECT 'maintenance', pystatus._microseconds(upper(m.span) - lower(m.span))
                  FROM unnest(sp.maintenance * w.span) AS m(span)
                  UNION ALL
                  SELECT 'no data', pystatus._microseconds(upper(n.span) - lower(n.span))
                  FROM unnest(sp.no_data * w.span) AS n(span)) AS x(kind, us)
        ) AS p
        WHERE v_cover.edge_from < v_cover.hours_from
          AND (_compute_uptime.service_name IS NULL OR sp.service_name = _compute_uptime.service_name)
    ), rolled AS (
        -- Whole hours: the service's first and last in them, by their running
        -- totals (two rows a service, however long the window). Nearly every
        -- service has a row at the window's first and last hour: those are read
        -- for all services at once (an index range each), and only a service
        -- without one (new, or silent since) is looked up on its own.
        SELECT s.service_name,
               (l.h).up_us_before + (l.h).up_us - (f.h).up_us_before AS up_us,
               (l.h).down_us_before + (l.h).down_us - (f.h).down_us_before AS down_us,
               (l.h).maintenance_us_before + (l.h).maintenance_us - (f.h).maintenance_us_before
                   AS maintenance_us
        FROM services AS s
        LEFT JOIN pystatus.rollup_hourly AS f0
          ON f0.service_name = s.service_name AND f0.bucket = v_cover.hours_from
        LEFT JOIN pystatus.rollup_hourly AS l0
          ON l0.service_name = s.service_name AND l0.bucket = v_cover.hours_to - interval '1 hour'
        CROSS JOIN LATERAL (
            SELECT coalesce(f0, (SELECT r FROM pystatus.rollup_hourly AS r
                                 WHERE r.service_name = s.service_name
                                   AND r.bucket >= v_cover.hours_from AND r.bucket < v_cover.hours_to
                                 ORDER BY r.bucket
                                 LIMIT 1)) AS h
        ) AS f
        CROSS JOIN LATERAL (
            SELECT coalesce(l0, (SELECT r FROM pystatus.rollup_hourly AS r
                                 WHERE r.service_name = s.service_name
                                   AND r.bucket >= v_cover.hours_from AND r.bucket < v_cover.hours_to
                                 ORDER BY r.bucket DESC
                                 LIMIT 1)) AS h
        ) AS l
        WHERE v_cover.hours_from < v_cover.hours_to
        UNION ALL
        SELECT c.service_name::text, c.up_us, c.down_us, c.maintenance_us
        FROM pystatus.rollup_current AS c
        WHERE v_cover.current_to > v_cover.hours_to
          AND (_compute_uptime.service_name IS NULL OR c.service_name = _compute_uptime.service_name)
        UNION ALL
        SELECT e.service_name, e.up_us, e.down_us, e.maintenance_us
        FROM edge AS e
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
    'Uptime over [since, least(until, now())), from rollups for what they hold (the spans of '
    'since''s hour, whole hours by their running totals, the current hour so far) and from raw '
    'history for the rest (use_rollups), or from raw history only.';

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
          AND pystatus._history_hour(h.heartbeat_timestamp)
              BETWEEN pystatus._history_hour(now() - trend.recent - trend.baseline) AND pystatus._history_hour(now())
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
               h.current_task IS DISTINCT FROM lag(h.current_task) OVER (ORDER BY h.heartbeat_timestamp, h.ctid)
                   AS changed
        FROM public.system_status_history AS h
        WHERE h.service_name = task_durations.service_name
          AND pystatus._history_hour(h.heartbeat_timestamp)
              BETWEEN pystatus._history_hour(task_durations.since) AND pystatus._history_hour(task_durations.until)
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


-- The dashboard's fleet view: every service's live status with its rolled-up
-- uptime and the strip of its last 24 hours, and the recent incidents across
-- the fleet, each in one cheap query (no scan of raw history for the fleet).

SET LOCAL search_path = pg_catalog, pg_temp;

-- What "needs attention" means, for the dashboard, its counts and the CLI.
CREATE OR REPLACE FUNCTION pystatus.needs_attention(effective_status text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN needs_attention.effective_status IN ('degraded', 'down', 'stale');
COMMENT ON FUNCTION pystatus.needs_attention(text) IS
    'Whether a service in this effective status needs attention: degraded, down or stale.';

-- Runs as its owner: a pystatus_reader login reads the rollups only through it.
-- A page at a time: a fleet of any size is listed in pages of a bounded size,
-- and the rows past the page are never built.
CREATE OR REPLACE FUNCTION pystatus.service_overview(
    max_rows integer DEFAULT NULL, skip_rows integer DEFAULT 0,
    attention_only boolean DEFAULT false, only_service text DEFAULT NULL)
RETURNS TABLE (
    service_name text, effective_status text, reported_status text, last_heartbeat timestamptz,
    seconds_since double precision, current_task text, latency_ms double precision,
    expected_interval interval, grace interval, stale_after timestamptz,
    maintenance_until timestamptz, needs_attention boolean,
    uptime_24h double precision, observed_24h_seconds double precision,
    uptime_30d double precision, observed_30d_seconds double precision,
    hours_until timestamptz, hourly_uptime double precision[])
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
    SELECT l.service_name::text, l.effective_status::text, l.reported_status::text, l.last_heartbeat,
           l.seconds_since, l.current_task::text, l.latency_ms, l.expected_interval, l.grace,
           l.stale_after, l.maintenance_until,
           pystatus.needs_attention(l.effective_status),
           d.up_us::double precision / nullif(d.up_us + d.down_us, 0),
           coalesce(d.up_us + d.down_us, 0) / 1e6::double precision,
           m.up_us::double precision / nullif(m.up_us + m.down_us, 0),
           coalesce(m.up_us + m.down_us, 0) / 1e6::double precision,
           st.rolled_until, coalesce(d.hourly_uptime, array_fill(NULL::double precision, ARRAY[24]))
    FROM pystatus.live_status AS l
    CROSS JOIN pystatus.rollup_state AS st
    -- Kept by refresh_rollups(), as a Prometheus scrape reads them: one row a
    -- service and window, the 1d row with the strip of its 24 hours (read from
    -- the hourly rollups at each call, it was nine tenths of this one).
    LEFT JOIN pystatus.uptime_windows AS d ON d.service_name = l.service_name AND d.time_window = '1d'
    LEFT JOIN pystatus.uptime_windows AS m ON m.service_name = l.service_name AND m.time_window = '30d'
    WHERE (NOT service_overview.attention_only OR pystatus.needs_attention(l.effective_status))
      AND (service_overview.only_service IS NULL OR l.service_name = service_overview.only_service)
    ORDER BY l.service_name
    LIMIT service_overview.max_rows OFFSET greatest(service_overview.skip_rows, 0);
$$;
COMMENT ON FUNCTION pystatus.service_overview(integer, integer, boolean, text) IS
    'Services as the dashboard lists them, by name: at most max_rows (NULL: all) after skipping '
    'skip_rows; only those needing attention if attention_only; only only_service if given. '
    'Columns: live_status''s; needs_attention; uptime over the last 24 rolled-up hours and the '
    'last 30 whole days (from uptime_windows) with the seconds of up or down time each rests on '
    '(observed: the rest of the window is no data or maintenance); and hourly_uptime, the uptime '
    'of each of the 24 hours before hours_until (rollup_state.rolled_until), oldest first, NULL '
    'where no data.';

-- The dashboard's header and page count, whatever the page shown.
CREATE OR REPLACE FUNCTION pystatus.fleet_counts()
RETURNS TABLE (effective_status text, needs_attention boolean, services bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.effective_status::text, pystatus.needs_attention(l.effective_status), count(*)
    FROM pystatus.live_status AS l
    GROUP BY l.effective_status
    ORDER BY l.effective_status;
$$;
COMMENT ON FUNCTION pystatus.fleet_counts() IS
    'How many services are in each effective status, and whether that status needs attention: '
    'the whole fleet in a few rows.';

CREATE OR REPLACE FUNCTION pystatus.recent_incidents(since timestamptz)
RETURNS TABLE (service_name text, started timestamptz, ended timestamptz, duration interval, cause text)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    v_candidates text[];
BEGIN
    -- The services that had down time: known from the rollups for the hours
    -- they hold (the current one so far too), and for the rest from the status
    -- changes recorded since, late rows waiting for a refresh, and now.
    SELECT array_agg(c.service_name) INTO v_candidates
    FROM (
        SELECT r.service_name::text AS service_name FROM pystatus.rollup_daily AS r
        WHERE r.bucket >= date_bin('1 day', recent_incidents.since, pystatus._bucket_origin())
          AND r.down_us > 0
        UNION
        SELECT r.service_name FROM pystatus.rollup_hourly AS r
        WHERE r.bucket >= greatest(
                  date_bin('1 hour', recent_incidents.since, pystatus._bucket_origin()),
                  (SELECT date_bin('1 day', s.rolled_until, pystatus._bucket_origin()) - interval '1 day'
                   FROM pystatus.rollup_state AS s))
          AND r.down_us > 0
        UNION
        SELECT c.service_name FROM pystatus.rollup_current AS c WHERE c.down_us > 0
        UNION
        SELECT e.service_name FROM pystatus.status_events AS e
        WHERE e.recorded_at >= (SELECT s.rolled_until - interval '1 hour' FROM pystatus.rollup_state AS s)
          AND (pystatus.status_category(e.to_status) = 'down' OR pystatus.status_category(e.from_status) = 'down')
        UNION
        SELECT d.service_name FROM pystatus.rollup_dirty AS d
        UNION
        SELECT l.service_name FROM pystatus.live_status AS l
        WHERE pystatus.status_category(l.reported_status) = 'down'
           OR pystatus.status_category(l.effective_status) = 'down'
    ) AS c;
    -- One reading of the whole fleet costs about as much as twenty services
    -- read one by one (each reads its window's raw edges): past that, read all
    -- once (a NULL service) and keep the candidates.
    RETURN QUERY
    SELECT i.service, i.started, i.ended, i.duration, i.cause
    FROM unnest(CASE WHEN cardinality(v_candidates) * 20 > (SELECT count(*) FROM public.system_status)
                     THEN ARRAY[NULL::text] ELSE v_candidates END) AS c(service_name)
    CROSS JOIN LATERAL pystatus._incidents(c.service_name, recent_incidents.since, now()) AS i
    WHERE i.service = ANY (v_candidates)
    ORDER BY i.started DESC, i.service;
END;
$$;
COMMENT ON FUNCTION pystatus.recent_incidents(timestamptz) IS
    'The incidents of every service since since, newest first: incidents(), read only for the '
    'services whose rollups, recent status changes or live status show down time.';

-- Rollups: per service per UTC hour and day, computed from raw history by the
-- same segments() as every answer, refreshed every minute, kept longer than raw
-- history. uptime() reads them for whole hours and days (50_answers.sql).

SET LOCAL search_path = pg_catalog, pg_temp;

-- Runs as its owner: a service writing system_status directly with a clock a
-- few minutes behind writes late rows, and needs no right on rollup_dirty.
CREATE OR REPLACE FUNCTION pystatus._mark_rollups_dirty()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
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
-- only fires for backfills. It costs a heartbeat no call per row:
-- _rollup_delay() is folded to a constant when the condition is prepared, once
-- per statement (a PL/pgSQL function for that reason: 10_rules.sql).
CREATE OR REPLACE TRIGGER system_status_history_late_rows
    AFTER INSERT ON public.system_status_history
    FOR EACH ROW WHEN (NEW.heartbeat_timestamp < now() - pystatus._rollup_delay())
    EXECUTE FUNCTION pystatus._mark_rollups_dirty();
COMMENT ON TRIGGER system_status_history_late_rows ON public.system_status_history IS
    'Rows dated further back than _rollup_delay() when written (backfills) mark rollups dirty.';

-- Each segment of [since, until) cut at the hours it crosses.
CREATE OR REPLACE FUNCTION pystatus._rollup_pieces(service_name text, since timestamptz, until timestamptz)
RETURNS TABLE (service_name text, bucket timestamptz, status text, piece tstzrange)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT g.service, b.bucket, g.status,
           tstzrange(greatest(g.starts, b.bucket), least(g.ends, b.bucket + interval '1 hour'))
    FROM pystatus._segments(_rollup_pieces.service_name,
                            tstzmultirange(tstzrange(_rollup_pieces.since,
                                                     greatest(_rollup_pieces.since, _rollup_pieces.until)))) AS g
    CROSS JOIN LATERAL generate_series(date_bin('1 hour', g.starts, pystatus._bucket_origin()),
                                       g.ends - interval '1 microsecond', interval '1 hour') AS b(bucket);
$$;
COMMENT ON FUNCTION pystatus._rollup_pieces(text, timestamptz, timestamptz) IS
    'The segments of [since, until) (service_name NULL: every service), cut at UTC hours: each '
    'piece with its hour (bucket) and status.';

-- An hour's times and spans, from its pieces: what _roll_up() stores, and what
-- span_old_hours() adds to hours rolled up before spans were kept.
CREATE OR REPLACE FUNCTION pystatus._rollup_hours(service_name text, since timestamptz, until timestamptz)
RETURNS TABLE (service_name text, bucket timestamptz, up_us bigint, down_us bigint,
               maintenance_us bigint, down tstzmultirange, silent tstzmultirange,
               maintenance tstzmultirange, no_data tstzmultirange)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
ROWS 10000
AS $$
    SELECT p.service_name, p.bucket,
           coalesce(sum(p.us) FILTER (WHERE p.category = 'up'), 0)::bigint,
           coalesce(sum(p.us) FILTER (WHERE p.category = 'down'), 0)::bigint,
           coalesce(sum(p.us) FILTER (WHERE p.category = 'maintenance'), 0)::bigint,
           coalesce(range_agg(p.piece) FILTER (WHERE p.category = 'down'), '{}'),
           coalesce(range_agg(p.piece) FILTER (WHERE p.status = 'stale'), '{}'),
           coalesce(range_agg(p.piece) FILTER (WHERE p.category = 'maintenance'), '{}'),
           coalesce(range_agg(p.piece) FILTER (WHERE p.category = 'no data'), '{}')
               + (tstzmultirange(tstzrange(p.bucket, p.bucket + interval '1 hour'))
                  - tstzmultirange(tstzrange(min(lower(p.piece)), max(upper(p.piece)))))
    FROM (SELECT r.service_name, r.bucket, r.status, r.piece,
                 pystatus.status_category(r.status) AS category,
                 pystatus._microseconds(upper(r.piece) - lower(r.piece)) AS us
          FROM pystatus._rollup_pieces(_rollup_hours.service_name, _rollup_hours.since,
                                       _rollup_hours.until) AS r) AS p
    GROUP BY p.service_name, p.bucket;
$$;
COMMENT ON FUNCTION pystatus._rollup_hours(text, timestamptz, timestamptz) IS
    'Each hour of [since, until) a service (NULL: every service) has pieces in: microseconds up, '
    'down and in maintenance, and the spans down, silent, in maintenance and without data (the '
    'hour''s time outside its pieces included).';

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
    DELETE FROM pystatus.rollup_spans
    WHERE (_roll_up.service_name IS NULL OR service_name = _roll_up.service_name) AND bucket >= _roll_up.since AND bucket < _roll_up.until;
    -- The segments are read once and grouped once by service and hour, for the
    -- times and for the spans of the hours not wholly up (the spans of an hour
    -- are gathered from its few pieces that were not up; the pieces of one
    -- reading are contiguous, so what they leave of the hour is at its ends).
    -- Heartbeat counts and latency come from the raw rows.
    WITH hours AS MATERIALIZED (
        SELECT * FROM pystatus._rollup_hours(_roll_up.service_name, _roll_up.since, _roll_up.until)
    ), spans AS (
        INSERT INTO pystatus.rollup_spans (service_name, bucket, down, silent, maintenance, no_data)
        SELECT h.service_name, h.bucket, h.down, h.silent, h.maintenance, h.no_data
        FROM hours AS h
        WHERE h.up_us < pystatus._microseconds(interval '1 hour')
    ), beats AS (
        SELECT sv.service_name::text AS service_name,
               pystatus._history_hour(h.heartbeat_timestamp) AS bucket,
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
              AND pystatus._history_hour(h1.heartbeat_timestamp)
                  BETWEEN pystatus._history_hour(_roll_up.since) AND pystatus._history_hour(_roll_up.until)
              AND h1.heartbeat_timestamp >= _roll_up.since
              AND h1.heartbeat_timestamp < _roll_up.until
            OFFSET 0
        ) AS h
        WHERE _roll_up.service_name IS NULL OR sv.service_name = _roll_up.service_name
        GROUP BY 1, 2
    ), computed AS MATERIALIZED (
        SELECT coalesce(t.service_name, b.service_name) AS service_name,
               coalesce(t.bucket, b.bucket) AS bucket,
               coalesce(t.up_us, 0) AS up_us, coalesce(t.down_us, 0) AS down_us,
               coalesce(t.maintenance_us, 0) AS maintenance_us,
               coalesce(b.heartbeats, 0)::integer AS heartbeats,
               coalesce(b.latency_count, 0)::integer AS latency_count,
               b.latency_avg, b.latency_p50, b.latency_p95, b.latency_max
        FROM hours AS t
        FULL JOIN beats AS b ON b.service_name = t.service_name AND b.bucket = t.bucket
    ), totals AS (  -- each service's running totals where these hours start: its row before
        SELECT s.service_name, p.up_us, p.down_us, p.maintenance_us
        FROM (SELECT DISTINCT c.service_name FROM computed AS c) AS s
        CROSS JOIN LATERAL (
            SELECT r.up_us_before + r.up_us AS up_us, r.down_us_before + r.down_us AS down_us,
                   r.maintenance_us_before + r.maintenance_us AS maintenance_us
            FROM pystatus.rollup_hourly AS r
            WHERE r.service_name = s.service_name AND r.bucket < _roll_up.since
            ORDER BY r.bucket DESC
            LIMIT 1
        ) AS p
    )
    -- Every later hour of these services is in [since, until): refresh_rollups()
    -- recomputes a service from its late row to rolled_until, and adds new
    -- hours after every kept one. Their running totals follow on from here.
    INSERT INTO pystatus.rollup_hourly
        (service_name, bucket, up_us, down_us, maintenance_us, heartbeats, latency_count,
         latency_avg, latency_p50, latency_p95, latency_max,
         up_us_before, down_us_before, maintenance_us_before)
    SELECT c.service_name, c.bucket, c.up_us, c.down_us, c.maintenance_us, c.heartbeats,
           c.latency_count, c.latency_avg, c.latency_p50, c.latency_p95, c.latency_max,
           coalesce(p.up_us, 0) + coalesce(sum(c.up_us) OVER earlier, 0),
           coalesce(p.down_us, 0) + coalesce(sum(c.down_us) OVER earlier, 0),
           coalesce(p.maintenance_us, 0) + coalesce(sum(c.maintenance_us) OVER earlier, 0)
    FROM computed AS c
    LEFT JOIN totals AS p ON p.service_name = c.service_name
    WINDOW earlier AS (PARTITION BY c.service_name ORDER BY c.bucket
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING);
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
                  AND pystatus._history_hour(h1.heartbeat_timestamp) >= v_day_from
                  AND pystatus._history_hour(h1.heartbeat_timestamp) < v_day_to
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
    'Recomputes the hourly rollups and spans in [since, until) and the daily rollups of the days '
    'that ended in it, for one service or (NULL) all. Returns the hourly rows written.';

-- Times and spans add up: the current hour is extended by the minutes since
-- the last refresh, reading only their rows (from the row in force when they
-- start, which the last extension kept). Each service's row in force is kept
-- from hour to hour: a service silent for hours (a stale one, a job that
-- reports hourly) still starts from it, not from a search of its history at
-- every refresh and answer (0.06 ms a service: 60 ms for 1,000).
CREATE OR REPLACE FUNCTION pystatus._roll_up_current(service_name text, since timestamptz, until timestamptz)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO pystatus.rollup_current AS c
        (service_name, up_us, down_us, maintenance_us, down, silent, last_at, last_status)
    SELECT t.service, t.up_us, t.down_us, t.maintenance_us, t.down, t.silent,
           coalesce(l.heartbeat_timestamp, one.heartbeat_timestamp),
           CASE WHEN l.service_name IS NOT NULL THEN l.status ELSE one.status END
    FROM (
        SELECT g.service,
               coalesce(sum(g.us) FILTER (WHERE g.category = 'up'), 0) AS up_us,
               coalesce(sum(g.us) FILTER (WHERE g.category = 'down'), 0) AS down_us,
               coalesce(sum(g.us) FILTER (WHERE g.category = 'maintenance'), 0) AS maintenance_us,
               coalesce(range_agg(g.piece) FILTER (WHERE g.category = 'down'), '{}') AS down,
               coalesce(range_agg(g.piece) FILTER (WHERE g.status = 'stale'), '{}') AS silent
        FROM (SELECT s.service, s.status, pystatus.status_category(s.status) AS category,
                     pystatus._microseconds(s.ends - s.starts) AS us, tstzrange(s.starts, s.ends) AS piece
              FROM pystatus._segments(_roll_up_current.service_name,
                                      tstzmultirange(tstzrange(_roll_up_current.since,
                                                               _roll_up_current.until))) AS s) AS g
        GROUP BY g.service
    ) AS t
    -- The newest row of these minutes, in force where they end (rows of one
    -- time are in one partition, where ctid orders them as written). For the
    -- fleet, these minutes' rows of every service read at once by time (the
    -- BRIN index, _history_minute()), not a lookup per service.
    LEFT JOIN (
        SELECT DISTINCT ON (h.service_name) h.service_name, h.heartbeat_timestamp, h.status
        FROM public.system_status_history AS h
        WHERE _roll_up_current.service_name IS NULL
          AND pystatus._history_minute(h.heartbeat_timestamp)
              BETWEEN pystatus._history_minute(_roll_up_current.since) AND pystatus._history_minute(_roll_up_current.until)
          AND h.heartbeat_timestamp >= _roll_up_current.since AND h.heartbeat_timestamp < _roll_up_current.until
        ORDER BY h.service_name, h.heartbeat_timestamp DESC, h.ctid DESC
    ) AS l ON l.service_name = t.service
    LEFT JOIN pystatus.rollup_current AS kept ON kept.service_name = t.service
    -- Else the newest row before until, looked up: for one service always,
    -- for the fleet only where none is kept (a new service, or after a reset).
    LEFT JOIN LATERAL (
        SELECT h.heartbeat_timestamp, h.status FROM public.system_status_history AS h
        WHERE (_roll_up_current.service_name IS NOT NULL OR (l.service_name IS NULL AND kept.last_at IS NULL))
          AND h.service_name = t.service
          AND pystatus._history_hour(h.heartbeat_timestamp) <= pystatus._history_hour(_roll_up_current.until)
          AND h.heartbeat_timestamp < _roll_up_current.until
        ORDER BY pystatus._history_hour(h.heartbeat_timestamp) DESC, h.heartbeat_timestamp DESC, h.ctid DESC
        LIMIT 1
    ) AS one ON true
    ON CONFLICT (service_name) DO UPDATE
    SET up_us = c.up_us + excluded.up_us,
        down_us = c.down_us + excluded.down_us,
        maintenance_us = c.maintenance_us + excluded.maintenance_us,
        down = c.down + excluded.down,
        silent = c.silent + excluded.silent,
        -- No row in these minutes: the one kept is still in force.
        last_at = coalesce(excluded.last_at, c.last_at),
        last_status = CASE WHEN excluded.last_at IS NULL THEN c.last_status ELSE excluded.last_status END;
$$;
COMMENT ON FUNCTION pystatus._roll_up_current(text, timestamptz, timestamptz) IS
    'Adds [since, until) to rollup_current, for one service or (NULL) all: its times and spans, '
    'and its row in force at until (the newest before it), where it has one.';

-- A new current hour: its sums start afresh, and each service's row in force
-- is carried on. The hour before is extended to its end first (its last
-- minutes, read by time), so that the rows kept are those in force where the
-- new hour starts. After a longer gap (the job stopped), or when rollup_current
-- held no hour (rolled_until moved by hand), it is emptied instead, and each
-- service's row in force is looked up once, by the next extension. Not carried:
-- the rows of services no longer in system_status, and rows older than the
-- oldest partition (gone from raw history, which the answers must equal).
CREATE OR REPLACE FUNCTION pystatus._start_current_hour(hour timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_state pystatus.rollup_state;
BEGIN
    SELECT * INTO v_state FROM pystatus.rollup_state;
    IF v_state.current_from = v_state.rolled_until
       AND v_state.current_until BETWEEN _start_current_hour.hour - interval '1 hour' AND _start_current_hour.hour THEN
        IF _start_current_hour.hour > v_state.current_until THEN
            PERFORM pystatus._roll_up_current(NULL, v_state.current_until, _start_current_hour.hour);
        END IF;
        DELETE FROM pystatus.rollup_current AS c
        WHERE NOT EXISTS (SELECT FROM public.system_status AS s WHERE s.service_name = c.service_name)
           OR c.last_at < (SELECT min(p.starts) FROM pystatus.history_partitions AS p WHERE NOT p.is_default);
        UPDATE pystatus.rollup_current
        SET up_us = 0, down_us = 0, maintenance_us = 0, down = '{}', silent = '{}';
    ELSE
        DELETE FROM pystatus.rollup_current;
    END IF;
    -- Answers and the next extension read the rows kept as of current_until.
    UPDATE pystatus.rollup_state SET current_from = _start_current_hour.hour, current_until = _start_current_hour.hour;
END;
$$;
COMMENT ON FUNCTION pystatus._start_current_hour(timestamptz) IS
    'Starts rollup_current afresh at hour: sums cleared, each service''s row in force carried on '
    '(or, after a gap of over an hour, emptied).';

CREATE OR REPLACE FUNCTION pystatus._refresh_uptime_windows()
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    DELETE FROM pystatus.uptime_windows;
    INSERT INTO pystatus.uptime_windows (service_name, time_window, up_us, down_us, hourly_uptime)
    -- The 24 hours: their sums, and each hour's uptime in its place (the
    -- dashboard's strip), from the hours a service has (NULL: no data).
    SELECT t.service_name, '1d', t.up_us, t.down_us,
           ARRAY(SELECT u.uptime
                 FROM generate_series(0, 23) AS g(hour)
                 LEFT JOIN unnest(t.hours, t.uptimes) AS u(hour, uptime) ON u.hour = g.hour
                 ORDER BY g.hour)
    FROM (
        SELECT r.service_name, sum(r.up_us) AS up_us, sum(r.down_us) AS down_us,
               array_agg((extract(epoch FROM r.bucket - (s.rolled_until - interval '24 hours')) / 3600)::integer)
                   AS hours,
               array_agg(r.up_us::double precision / nullif(r.up_us + r.down_us, 0)) AS uptimes
        FROM pystatus.rollup_state AS s
        JOIN pystatus.rollup_hourly AS r
          ON r.bucket >= s.rolled_until - interval '24 hours' AND r.bucket < s.rolled_until
        GROUP BY r.service_name
    ) AS t
    UNION ALL
    SELECT r.service_name, w.name, sum(r.up_us), sum(r.down_us), NULL
    FROM pystatus.rollup_state AS s
    CROSS JOIN (VALUES ('7d', 7), ('30d', 30)) AS w(name, days)
    JOIN pystatus.rollup_daily AS r
      ON r.bucket >= date_bin('1 day', s.rolled_until, pystatus._bucket_origin()) - w.days * interval '1 day'
     AND r.bucket < date_bin('1 day', s.rolled_until, pystatus._bucket_origin())
    GROUP BY r.service_name, w.name;
END;
COMMENT ON FUNCTION pystatus._refresh_uptime_windows() IS
    'Recomputes pystatus.uptime_windows from the rollups (refresh_rollups() runs it when they change).';

-- Kept by refresh_rollups() from 0.3.0 on: an installation upgraded to it
-- computes them at once rather than at its next rolled-up hour.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pystatus.uptime_windows WHERE time_window = '1d' AND hourly_uptime IS NULL) THEN
        PERFORM pystatus._refresh_uptime_windows();
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION pystatus.refresh_rollups()
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_state pystatus.rollup_state;
    v_origin constant timestamptz := pystatus._bucket_origin();
    v_to timestamptz := date_bin('1 hour', now() - pystatus._rollup_delay(), v_origin);
    v_current_to timestamptz := date_bin('1 minute', now() - pystatus._rollup_delay(), v_origin);
    v_rolled_until timestamptz;
    v_current_from timestamptz;
    v_current_until timestamptz;
    v_dirty record;
    v_hour timestamptz;
    v_current_dirty text[] := '{}';
    v_recomputed integer := 0;
    v_new integer := 0;
BEGIN
    -- A hot standby is read-only: its primary does this work, and replication
    -- brings the result. pg_cron runs no job there; a call by hand skips.
    IF pg_is_in_recovery() THEN
        RETURN jsonb_build_object('skipped', 'this server is a replica');
    END IF;
    IF NOT pystatus._try_job_lock('refresh_rollups') THEN
        RETURN jsonb_build_object('skipped', 'another refresh is running');
    END IF;
    SELECT * INTO v_state FROM pystatus.rollup_state FOR UPDATE;
    v_rolled_until := v_state.rolled_until;
    v_current_from := v_state.current_from;
    v_current_until := v_state.current_until;
    FOR v_dirty IN
        WITH taken AS (DELETE FROM pystatus.rollup_dirty RETURNING service_name, since)
        SELECT service_name, min(since) AS since FROM taken GROUP BY service_name
    LOOP
        IF v_dirty.since < v_state.rolled_until THEN
            v_recomputed := v_recomputed + pystatus._roll_up(
                v_dirty.service_name,
                date_bin('1 hour', v_dirty.since, v_origin),
                v_state.rolled_until);
        END IF;
        -- A late row changes the current hour too when it is older than its
        -- end: even one from before the hour, as the status in force at its start.
        IF v_dirty.since < v_state.current_until THEN
            v_current_dirty := v_current_dirty || v_dirty.service_name::text;
        END IF;
    END LOOP;
    IF v_to > v_rolled_until THEN
        -- An hour at a time, as the minute job goes: catching up (after the
        -- job was stopped, or history loaded at once), each reading sorts one
        -- hour of rows in memory, not days of them on disk (6 hours of 1,000
        -- services: 4.2 s, against 5.4 s at once).
        FOR v_hour IN SELECT generate_series(date_bin('1 hour', v_rolled_until, v_origin),
                                             v_to - interval '1 hour', interval '1 hour') LOOP
            v_new := v_new + pystatus._roll_up(NULL, greatest(v_hour, v_rolled_until), v_hour + interval '1 hour');
        END LOOP;
        v_rolled_until := v_to;
        DELETE FROM pystatus.rollup_hourly WHERE bucket < now() - v_state.retention;
        DELETE FROM pystatus.rollup_spans WHERE bucket < now() - v_state.retention;
        DELETE FROM pystatus.rollup_daily WHERE bucket < now() - v_state.retention;
    END IF;
    -- The current hour. Services with late rows in it first: recomputed, with
    -- the row in force where it stops (rollup_current holds the hour only while
    -- current_from = rolled_until: else it is started afresh below).
    IF cardinality(v_current_dirty) > 0 AND v_state.current_from = v_state.rolled_until THEN
        DELETE FROM pystatus.rollup_current WHERE service_name = ANY (v_current_dirty);
        PERFORM pystatus._roll_up_current(d.service_name, v_current_from, v_current_until)
        FROM unnest(v_current_dirty) AS d(service_name);
    END IF;
    -- Started afresh once the hour before is rolled up (or rolled_until was
    -- moved by hand), else extended from where it stopped.
    IF v_current_from <> v_rolled_until THEN
        PERFORM pystatus._start_current_hour(v_rolled_until);
        v_current_from := v_rolled_until;
        v_current_until := v_rolled_until;
    END IF;
    IF v_current_to > v_current_until THEN
        PERFORM pystatus._roll_up_current(NULL, v_current_until, v_current_to);
        v_current_until := v_current_to;
    END IF;
    UPDATE pystatus.rollup_state
    SET rolled_until = v_rolled_until, current_from = v_current_from,
        current_until = v_current_until;
    -- What a Prometheus scrape reads: recomputed here, once, rather than at
    -- every scrape (hundreds of thousands of rollup rows at 10,000 services).
    IF v_new > 0 OR v_recomputed > 0 THEN
        PERFORM pystatus._refresh_uptime_windows();
    END IF;
    RETURN jsonb_build_object('hours_added', v_new, 'hours_recomputed', v_recomputed,
                              'rolled_until', v_rolled_until, 'current_until', v_current_until);
END;
$$;
COMMENT ON FUNCTION pystatus.refresh_rollups() IS
    'Brings the rollups up to date: recomputes services with late rows, adds the hours that '
    'ended, extends the current hour to the last minute (both 5 minutes behind, so that their '
    'heartbeats have committed), drops rollups past their retention. Run every minute (pg_cron '
    'job pystatus-rollups). On a hot standby (a read-only replica) it does nothing and returns '
    '{"skipped": "this server is a replica"}.';

-- Hours rolled up before spans were kept (an upgrade from 0.2.0) are answered
-- from raw history where they saw down time, and once that history expires,
-- their incidents and the edges of windows inside them would be lost. While raw
-- history still holds them, their spans are computed from it, a day at a time
-- from spans_from backwards (each call a transaction of its own: `pystatus
-- migrate` calls it after its own until nothing is left, and resumes where a
-- stopped one left off). Only spans are written: the hours' times stay as they
-- were rolled up, and what the answers read from raw for them is what the spans
-- now hold. Hours whose raw history is already gone stay as they are.
CREATE OR REPLACE FUNCTION pystatus.span_old_hours(max_span interval DEFAULT interval '1 day')
RETURNS timestamptz
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_to timestamptz;
    v_from timestamptz;
    v_oldest timestamptz;
BEGIN
    IF span_old_hours.max_span IS NULL OR span_old_hours.max_span < interval '1 hour' THEN
        RAISE EXCEPTION 'invalid max_span %: at least 1 hour', span_old_hours.max_span
            USING ERRCODE = 'PS005';
    END IF;
    PERFORM pystatus._wait_job_lock('refresh_rollups');  -- refresh writes spans too
    SELECT s.spans_from INTO v_to FROM pystatus.rollup_state AS s;
    IF v_to IS NULL OR v_to = '-infinity'::timestamptz THEN
        RETURN NULL;
    END IF;
    -- The first whole hour raw history holds, with the row in force at its start.
    SELECT min(h.heartbeat_timestamp) INTO v_oldest FROM public.system_status_history AS h;
    IF v_oldest IS NULL THEN
        RETURN NULL;
    END IF;
    v_from := greatest(date_bin('1 hour', v_oldest, pystatus._bucket_origin()) + interval '1 hour',
                       date_bin('1 hour', v_to - span_old_hours.max_span, pystatus._bucket_origin()));
    IF v_from >= v_to THEN
        RETURN NULL;
    END IF;
    INSERT INTO pystatus.rollup_spans (service_name, bucket, down, silent, maintenance, no_data)
    SELECT h.service_name, h.bucket, h.down, h.silent, h.maintenance, h.no_data
    FROM pystatus._rollup_hours(NULL, v_from, v_to) AS h
    WHERE h.up_us < pystatus._microseconds(interval '1 hour')
    ON CONFLICT (service_name, bucket) DO NOTHING;
    UPDATE pystatus.rollup_state SET spans_from = v_from;
    RETURN v_from;
END;
$$;
COMMENT ON FUNCTION pystatus.span_old_hours(interval) IS
    'Computes, from raw history, the spans of up to max_span of the hours rolled up before spans '
    'were kept (the latest first), and moves rollup_state.spans_from back over them. Returns the '
    'new spans_from, or NULL when nothing is left that raw history holds.';

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

-- Re-applied with every change of these files: jobs added or changed by a new
-- version are scheduled by the same migrate that brings them.
SELECT pystatus.schedule_maintenance();

-- Alerts: every change of a service's effective status is an event, written
-- in the same transaction as the change (the outbox); rules say which
-- services alert which channels and when (anti-flap, reminders); messages are
-- delivered at least once by `pystatus alerts run` (pystatus/alerts.py), which
-- claims them here. The tables are in 20_tables.sql, maintenance windows and
-- snoozes in 45_windows.sql.

SET LOCAL search_path = pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- Events: the outbox, written by triggers on system_status
------------------------------------------------------------------------------

-- The channel `pystatus alerts run` listens on, for test messages. Status
-- writes do not notify: a NOTIFY in a service's transaction would make its
-- PREPARE TRANSACTION fail (two-phase commit) and serialize its commit on the
-- notification queue's lock; the worker polls every second instead.
CREATE OR REPLACE FUNCTION pystatus._alerts_channel()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'pystatus_alerts';
COMMENT ON FUNCTION pystatus._alerts_channel() IS
    'The LISTEN/NOTIFY channel that wakes alert workers for a test message.';

------------------------------------------------------------------------------
-- Channels and rules
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus._channel_options(kind text)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE kind
    WHEN 'webhook' THEN ARRAY['secret', 'timeout', 'group_threshold']
    WHEN 'email' THEN ARRAY['host', 'port', 'starttls', 'ssl', 'username', 'password', 'sender', 'timeout',
                            'group_threshold']
    -- Apprise URLs take their own timeouts (?cto=, ?rto=)
    WHEN 'apprise' THEN ARRAY['group_threshold']
END;
COMMENT ON FUNCTION pystatus._channel_options(text) IS
    'The options each kind of channel takes.';

CREATE OR REPLACE FUNCTION pystatus.add_alert_channel(
    name text, kind text, target text, options jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_unknown text;
BEGIN
    IF add_alert_channel.name IS NULL OR add_alert_channel.name !~ '^[a-z0-9][a-z0-9_.-]{0,63}$' THEN
        RAISE EXCEPTION 'invalid channel name %: lower-case letters, digits, _ . - (at most 64)',
            quote_nullable(add_alert_channel.name) USING ERRCODE = 'PS005';
    END IF;
    IF add_alert_channel.kind IS NULL OR pystatus._channel_options(add_alert_channel.kind) IS NULL THEN
        RAISE EXCEPTION 'invalid channel kind %: webhook, email or apprise', quote_nullable(add_alert_channel.kind)
            USING ERRCODE = 'PS005';
    END IF;
    IF add_alert_channel.target IS NULL OR add_alert_channel.target = ''
       OR (add_alert_channel.kind = 'webhook' AND add_alert_channel.target !~ '^https?://[^/\s]+')
       OR (add_alert_channel.kind = 'email' AND add_alert_channel.target !~ '^[^@\s,]+@[^@\s,]+(\s*,\s*[^@\s,]+@[^@\s,]+)*$')
       OR (add_alert_channel.kind = 'apprise' AND add_alert_channel.target !~ '^[a-z0-9+]+://') THEN
        RAISE EXCEPTION 'invalid target for a % channel: %', add_alert_channel.kind, CASE add_alert_channel.kind
            WHEN 'webhook' THEN 'an http:// or https:// URL'
            WHEN 'email' THEN 'one or more addresses, separated by commas'
            ELSE 'an Apprise URL (slack://..., mailto://..., json://...)' END
            USING ERRCODE = 'PS005';
    END IF;
    IF add_alert_channel.options IS NULL OR jsonb_typeof(add_alert_channel.options) <> 'object' THEN
        RAISE EXCEPTION 'invalid options: a JSON object' USING ERRCODE = 'PS005';
    END IF;
    SELECT string_agg(k, ', ') INTO v_unknown
    FROM jsonb_object_keys(add_alert_channel.options) AS k
    WHERE k <> ALL (pystatus._channel_options(add_alert_channel.kind));
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'invalid options for a % channel: % (it takes %)', add_alert_channel.kind, v_unknown,
            coalesce(nullif(array_to_string(pystatus._channel_options(add_alert_channel.kind), ', '), ''), 'none')
            USING ERRCODE = 'PS005';
    END IF;
    IF add_alert_channel.options ? 'timeout'
       AND (jsonb_typeof(add_alert_channel.options -> 'timeout') <> 'number'
            OR (add_alert_channel.options ->> 'timeout')::numeric NOT BETWEEN 1 AND 120) THEN
        RAISE EXCEPTION 'invalid timeout %: seconds, from 1 to 120', add_alert_channel.options -> 'timeout'
            USING ERRCODE = 'PS005';
    END IF;
    IF add_alert_channel.options ? 'group_threshold'
       AND (jsonb_typeof(add_alert_channel.options -> 'group_threshold') <> 'number'
            OR (add_alert_channel.options ->> 'group_threshold')::numeric NOT BETWEEN 0 AND 1000000
            OR (add_alert_channel.options ->> 'group_threshold')::numeric
               <> trunc((add_alert_channel.options ->> 'group_threshold')::numeric)) THEN
        RAISE EXCEPTION 'invalid group_threshold %: a whole number of messages (0: never summed up)',
            add_alert_channel.options -> 'group_threshold' USING ERRCODE = 'PS005';
    END IF;
    INSERT INTO pystatus.alert_channels AS c (name, kind, target, options)
    VALUES (add_alert_channel.name, add_alert_channel.kind, add_alert_channel.target, add_alert_channel.options)
    ON CONFLICT ON CONSTRAINT alert_channels_pkey DO UPDATE
        SET kind = EXCLUDED.kind, target = EXCLUDED.target, options = EXCLUDED.options;
END;
$$;
COMMENT ON FUNCTION pystatus.add_alert_channel(text, text, text, jsonb) IS
    'Adds (or replaces) a channel: webhook (target: URL; options: secret, timeout), email (target: '
    'addresses; options: host, port, starttls, ssl, username, password, sender, timeout) or apprise '
    '(target: Apprise URLs, with their own timeout parameters). Every kind takes group_threshold: '
    'from how many messages of one kind due at once they go as one summary (0: never). PS005 on bad input.';

CREATE OR REPLACE FUNCTION pystatus.remove_alert_channel(name text)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH gone AS (DELETE FROM pystatus.alert_channels AS c WHERE c.name = remove_alert_channel.name RETURNING 1)
    SELECT count(*) > 0 FROM gone;
END;
COMMENT ON FUNCTION pystatus.remove_alert_channel(text) IS
    'Removes a channel, its rules and its messages; false if there was none.';

-- Secrets stay in the table: what lists show has them masked.
CREATE OR REPLACE FUNCTION pystatus._mask_secrets(kind text, target text, options jsonb, OUT target text, OUT options jsonb)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE _mask_secrets.kind
                WHEN 'email' THEN _mask_secrets.target
                -- Apprise URLs carry their tokens anywhere, the host part included.
                WHEN 'apprise' THEN regexp_replace(_mask_secrets.target, '(^|\s)([a-z0-9+]+://)\S*', '\1\2...', 'g')
                -- A webhook's host is kept; its path and query often hold a token.
                ELSE regexp_replace(_mask_secrets.target, '^([a-z0-9+]+://)(?:[^@/]*@)?([^/?#]*).*$', '\1\2/...') END,
           (SELECT coalesce(jsonb_object_agg(o.key, CASE WHEN o.key IN ('secret', 'password') THEN '"***"'::jsonb
                                                         ELSE o.value END), '{}'::jsonb)
            FROM jsonb_each(_mask_secrets.options) AS o);
$$;
COMMENT ON FUNCTION pystatus._mask_secrets(text, text, jsonb) IS
    'A channel''s target and options as lists show them: URLs cut after the host, secret and password hidden.';

CREATE OR REPLACE FUNCTION pystatus.alert_channel_list()
RETURNS TABLE (name text, kind text, target text, options jsonb, rules bigint)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.name, c.kind, m.target, m.options,
           (SELECT count(*) FROM pystatus.alert_rules AS r WHERE r.channel = c.name)
    FROM pystatus.alert_channels AS c
    CROSS JOIN LATERAL pystatus._mask_secrets(c.kind, c.target, c.options) AS m
    ORDER BY c.name;
$$;
COMMENT ON FUNCTION pystatus.alert_channel_list() IS
    'The channels, with secrets masked, and how many rules use each.';

CREATE OR REPLACE FUNCTION pystatus.add_alert_rule(
    service_pattern text,
    channel text,
    down_for interval DEFAULT interval '0',
    down_reports integer DEFAULT 1,
    up_for interval DEFAULT interval '0',
    remind_every interval DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM pystatus._check_service_pattern(add_alert_rule.service_pattern);
    IF NOT EXISTS (SELECT FROM pystatus.alert_channels AS c WHERE c.name = add_alert_rule.channel) THEN
        RAISE EXCEPTION 'unknown channel %', quote_nullable(add_alert_rule.channel)
            USING ERRCODE = 'PS005', HINT = 'Add it first: pystatus alerts channels add ...';
    END IF;
    IF add_alert_rule.down_for IS NULL OR add_alert_rule.down_for < interval '0'
       OR add_alert_rule.up_for IS NULL OR add_alert_rule.up_for < interval '0' THEN
        RAISE EXCEPTION 'invalid down_for % / up_for %: 0 or more', add_alert_rule.down_for, add_alert_rule.up_for
            USING ERRCODE = 'PS005';
    END IF;
    IF add_alert_rule.down_reports IS NULL OR add_alert_rule.down_reports < 1 THEN
        RAISE EXCEPTION 'invalid down_reports %: 1 or more', add_alert_rule.down_reports USING ERRCODE = 'PS005';
    END IF;
    IF add_alert_rule.remind_every < interval '1 minute' THEN
        RAISE EXCEPTION 'invalid remind_every %: at least 1 minute (or none)', add_alert_rule.remind_every
            USING ERRCODE = 'PS005';
    END IF;
    INSERT INTO pystatus.alert_rules AS r (service_pattern, channel, down_for, down_reports, up_for, remind_every)
    VALUES (add_alert_rule.service_pattern, add_alert_rule.channel, add_alert_rule.down_for,
            add_alert_rule.down_reports, add_alert_rule.up_for, add_alert_rule.remind_every)
    ON CONFLICT ON CONSTRAINT alert_rules_service_pattern_channel_key DO UPDATE
        SET down_for = EXCLUDED.down_for, down_reports = EXCLUDED.down_reports,
            up_for = EXCLUDED.up_for, remind_every = EXCLUDED.remind_every
    RETURNING r.id INTO v_id;
    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION pystatus.add_alert_rule(text, text, interval, integer, interval, interval) IS
    'Alerts channel when a service matching service_pattern (* for any characters) is down or stale '
    'for down_for and down_reports consecutive reports; sends the recovery once it has been out of '
    'down for up_for; reminds every remind_every while still down (NULL: never). Replaces the rule '
    'of the same pattern and channel. Returns its id.';

CREATE OR REPLACE FUNCTION pystatus.remove_alert_rule(rule_id bigint)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH gone AS (DELETE FROM pystatus.alert_rules AS r WHERE r.id = remove_alert_rule.rule_id RETURNING 1)
    SELECT count(*) > 0 FROM gone;
END;
COMMENT ON FUNCTION pystatus.remove_alert_rule(bigint) IS
    'Removes a rule (its open alerts end without a recovery message); false if there was none.';

------------------------------------------------------------------------------
-- Deciding: from events, rules and windows to messages
------------------------------------------------------------------------------

-- What a message says about one service: a message about one service is this
-- with the header of its channel (_alert_header()); a summary carries one of
-- these per service. current_task is free text a writer set: cleaned, so that
-- no control or escape character reaches a receiver.
CREATE OR REPLACE FUNCTION pystatus._alert_entry(
    kind text, rule_id bigint, service_pattern text, service_name text, status text,
    down_since timestamptz, up_since timestamptz, reminders integer,
    current_task text, last_heartbeat timestamptz)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
RETURN jsonb_build_object(
    'service', service_name,
    'status', status,
    'down_since', down_since,
    'up_since', up_since,
    'down_seconds', round(extract(epoch FROM coalesce(up_since, now()) - down_since), 3),
    'reminder', reminders,
    'current_task', pystatus.clean_text(current_task),
    'last_heartbeat', last_heartbeat,
    'rule', jsonb_build_object('id', rule_id, 'service_pattern', service_pattern),
    'text', CASE kind
        WHEN 'recovered' THEN format('%s recovered (%s) after %s down', service_name, status,
                                     date_trunc('second', up_since - down_since))
        WHEN 'reminder' THEN format('%s is still %s, for %s (reminder %s)', service_name, status,
                                    date_trunc('second', now() - down_since), reminders)
        ELSE format('%s is %s since %s', service_name,
                    CASE status WHEN 'stale' THEN 'stale (silent)' ELSE status END,
                    to_char(down_since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')) END);
COMMENT ON FUNCTION pystatus._alert_entry(text, bigint, text, text, text, timestamptz, timestamptz, integer, text, timestamptz) IS
    'What an alert message says about one service (docs/alerts.md, "The message"); a summary '
    'carries one per service.';

CREATE OR REPLACE FUNCTION pystatus._alert_header(kind text, channel text)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
RETURN jsonb_build_object('version', 1, 'kind', kind, 'channel', channel, 'database', current_database(),
                          'created_at', now());
COMMENT ON FUNCTION pystatus._alert_header(text, text) IS
    'What every message of a channel carries, whatever it is about (the idempotency key is added as it is queued).';

-- A summary's text names a few of its services: it is an email's subject and
-- a chat line.
CREATE OR REPLACE FUNCTION pystatus._alert_summary_text(kind text, services text[])
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN format('%s services %s: %s%s', cardinality(services),
              CASE kind WHEN 'down' THEN 'are down or stale' WHEN 'reminder' THEN 'are still down or stale'
                        ELSE 'recovered' END,
              array_to_string(services[1:3], ', '),
              CASE WHEN cardinality(services) > 3 THEN format(' and %s more', cardinality(services) - 3) END);
COMMENT ON FUNCTION pystatus._alert_summary_text(text, text[]) IS
    'The text of a summary: how many services, what happened to them, the first three names.';

CREATE OR REPLACE FUNCTION pystatus._alert_group_threshold()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 10;
COMMENT ON FUNCTION pystatus._alert_group_threshold() IS
    'How many messages of one kind due on a channel at once go as one summary, for a channel '
    'without its own group_threshold option.';

-- A summary's body lists each of its services: past this many, a storm is
-- summed up in several messages, so that no receiver is sent megabytes.
CREATE OR REPLACE FUNCTION pystatus._alert_group_limit()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 1000;
COMMENT ON FUNCTION pystatus._alert_group_limit() IS
    'The most services one summary message lists.';

-- The status a service's raw history gives at a time (stale once silent past
-- its deadline), before any maintenance window: what a window's edge changes.
CREATE OR REPLACE FUNCTION pystatus._raw_status_at(service_name text, at timestamptz)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN pystatus.goes_stale(h.status)
                     AND h.heartbeat_timestamp + coalesce(e.expected_interval, interval '60 seconds')
                         + coalesce(e.grace, interval '60 seconds') < _raw_status_at.at
                THEN 'stale' ELSE h.status::text END
    FROM (SELECT h1.status, h1.heartbeat_timestamp FROM public.system_status_history AS h1
          WHERE h1.service_name = _raw_status_at.service_name
            AND pystatus._history_hour(h1.heartbeat_timestamp) <= pystatus._history_hour(_raw_status_at.at)
            AND h1.heartbeat_timestamp <= _raw_status_at.at
          ORDER BY pystatus._history_hour(h1.heartbeat_timestamp) DESC, h1.heartbeat_timestamp DESC,
                   h1.ctid DESC
          LIMIT 1) AS h
    LEFT JOIN pystatus.service_expectations AS e ON e.service_name = _raw_status_at.service_name;
$$;
COMMENT ON FUNCTION pystatus._raw_status_at(text, timestamptz) IS
    'A service''s status at a time from its raw history (stale once silent past its deadline), '
    'maintenance windows not applied; NULL before its first row.';

-- When a service's current down (into_down) or up spell began by its raw
-- history: its first row since the last row of the other kind. For a service
-- whose events do not say (written before alerts were installed, or expired
-- during a long outage): evaluate_alerts() reads the events first.
CREATE OR REPLACE FUNCTION pystatus._spell_began_in_history(service_name text, into_down boolean)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.heartbeat_timestamp FROM public.system_status_history AS h
    CROSS JOIN (SELECT coalesce(
        (SELECT h2.heartbeat_timestamp FROM public.system_status_history AS h2
         WHERE h2.service_name = _spell_began_in_history.service_name
           AND (h2.status IN ('down', 'stale')) <> _spell_began_in_history.into_down
         ORDER BY pystatus._history_hour(h2.heartbeat_timestamp) DESC, h2.heartbeat_timestamp DESC
         LIMIT 1), '-infinity') AS at) AS previous
    WHERE h.service_name = _spell_began_in_history.service_name
      AND pystatus._history_hour(h.heartbeat_timestamp) >= pystatus._history_hour(previous.at)
      AND h.heartbeat_timestamp > previous.at
    ORDER BY pystatus._history_hour(h.heartbeat_timestamp), h.heartbeat_timestamp
    LIMIT 1;
$$;
COMMENT ON FUNCTION pystatus._spell_began_in_history(text, boolean) IS
    'When the service went down (into_down) or came back up this time, by its raw history alone; '
    'NULL without history.';

-- It writes only alert tables and events, and marks nothing stale itself (the
-- worker calls alert_sweep() first, in a transaction of its own): no status
-- write ever waits for it. Its own waits are bounded too, e.g. behind a DBA
-- removing a rule in an open transaction: it fails, and the next round retries.
CREATE OR REPLACE FUNCTION pystatus.evaluate_alerts(OUT messages integer, OUT next_check timestamptz)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
    v_from timestamptz;
    v_snoozed text[];
BEGIN
    messages := 0;
    -- A hot standby is read-only: its primary does this work, and replication
    -- brings the result. pg_cron runs no job there; a call by hand skips.
    IF pg_is_in_recovery() THEN
        next_check := now() + interval '1 minute';
        RETURN;
    END IF;
    -- One evaluation at a time (several workers): the others come back soon.
    IF NOT pystatus._try_job_lock('evaluate_alerts') THEN
        next_check := now() + interval '1 second';
        RETURN;
    END IF;
    -- The edges of maintenance windows since the last evaluation, for the
    -- services whose effective status they change (down or stale inside).
    SELECT p.evaluated_until INTO v_from FROM pystatus.alerts_progress AS p FOR UPDATE;
    INSERT INTO pystatus.status_events (service_name, at, from_status, to_status, cause)
    SELECT s.service_name, edge.at,
           CASE WHEN edge.opening THEN r.status ELSE 'maintenance' END,
           CASE WHEN edge.opening THEN 'maintenance' ELSE r.status END,
           CASE WHEN edge.opening THEN 'window started' ELSE 'window ended' END
    FROM pystatus.maintenance_occurrences(v_from, now()) AS o
    CROSS JOIN LATERAL (VALUES (o.starts, true), (o.ends, false)) AS edge(at, opening)
    JOIN public.system_status AS s ON s.service_name LIKE o.like_pattern
    CROSS JOIN LATERAL (SELECT pystatus._raw_status_at(s.service_name, edge.at) AS status) AS r
    WHERE o.kind = 'maintenance' AND edge.at > v_from AND edge.at <= now()
      AND r.status IN ('down', 'stale')
      -- an edge inside another window of the same service changes nothing
      AND NOT EXISTS (SELECT FROM pystatus.maintenance_occurrences(edge.at, edge.at + interval '1 microsecond') AS x
                      WHERE x.kind = 'maintenance' AND s.service_name LIKE x.like_pattern
                        AND x.window_id <> o.window_id AND x.starts < edge.at AND x.ends > edge.at);
    UPDATE pystatus.alerts_progress SET evaluated_until = now();

    -- A service deleted from system_status while alerted: its alerts end.
    DELETE FROM pystatus.alert_state AS st
    WHERE NOT EXISTS (SELECT FROM public.system_status AS s WHERE s.service_name = st.service_name);

    SELECT coalesce(array_agg(o.like_pattern), '{}') INTO v_snoozed
    FROM pystatus.maintenance_occurrences(now(), now() + interval '1 microsecond') AS o
    WHERE o.kind = 'snooze';

    -- Every pair of a rule and a service that is down now or alerted, decided
    -- in one statement, whatever their number (a network partition silences
    -- thousands of services at once): what is due, the open alerts it opens,
    -- reminds or closes, and the messages.
    WITH pairs AS MATERIALIZED (
        SELECT r.id AS rule_id, r.service_pattern, r.channel, r.down_for, r.down_reports, r.up_for,
               r.remind_every, l.service_name, l.effective_status,
               l.effective_status IN ('down', 'stale') AS is_down, l.reported_status, l.stale_after,
               l.last_heartbeat, l.current_task,
               st.down_since AS alerted_since, st.alerted_at, st.reminded_at, st.reminders,
               l.service_name LIKE ANY (v_snoozed) AS snoozed
        FROM pystatus.live_status AS l
        JOIN pystatus.alert_rules AS r ON l.service_name LIKE r.like_pattern
        LEFT JOIN pystatus.alert_state AS st ON st.rule_id = r.id AND st.service_name = l.service_name
        WHERE (st.rule_id IS NOT NULL OR l.effective_status IN ('down', 'stale'))
          -- Down inside a maintenance window: muted, neither alerted nor recovered.
          AND NOT (l.maintenance_until IS NOT NULL AND l.effective_status = 'maintenance')
          -- Not alerted yet and snoozed: nothing to decide.
          AND NOT (st.rule_id IS NULL AND l.service_name LIKE ANY (v_snoozed))
    ), spells AS MATERIALIZED (
        -- When the current down spell began (not alerted yet) or up spell
        -- (alerted, out of down), once per service whatever its rules: a
        -- service still reported up but silent past its deadline is down from
        -- the deadline; otherwise its newest event that crossed between down
        -- and not down says, when that crossing goes the right way; else its
        -- raw history.
        SELECT w.service_name,
               CASE WHEN w.is_down AND w.reported_status NOT IN ('down', 'stale') THEN w.stale_after
                    ELSE coalesce(crossed.at, pystatus._spell_began_in_history(w.service_name, w.is_down),
                                  w.last_heartbeat) END AS began
        FROM (SELECT DISTINCT p.service_name, p.is_down, p.reported_status, p.stale_after, p.last_heartbeat
              FROM pairs AS p
              WHERE (p.alerted_at IS NULL) = p.is_down) AS w
        LEFT JOIN LATERAL (
            SELECT CASE WHEN (pystatus.status_category(e.to_status) = 'down') = w.is_down THEN e.at END AS at
            FROM pystatus.status_events AS e
            WHERE e.service_name = w.service_name
              AND (pystatus.status_category(e.to_status) = 'down')
                  <> coalesce(pystatus.status_category(e.from_status) = 'down', false)
            ORDER BY e.at DESC, e.id DESC
            LIMIT 1) AS crossed ON true
    ), timed AS (
        SELECT p.*, coalesce(sp.began, now()) AS began,
               CASE WHEN NOT p.is_down THEN coalesce(sp.began, now()) + p.up_for
                    WHEN p.alerted_at IS NULL THEN sp.began + p.down_for
                    -- Alerted: a reminder every remind_every (NULL: never).
                    ELSE coalesce(p.reminded_at, p.alerted_at) + p.remind_every END AS ready
        FROM pairs AS p
        LEFT JOIN spells AS sp ON sp.service_name = p.service_name
    ), decided AS MATERIALIZED (
        SELECT t.*, CASE
            WHEN t.ready IS NULL OR t.ready > now() THEN NULL
            -- Out of down for up_for: the recovery.
            WHEN NOT t.is_down THEN 'recovered'
            WHEN t.alerted_at IS NOT NULL THEN CASE WHEN NOT t.snoozed THEN 'reminder' END
            -- Down long enough, and for enough reports (silence is enough).
            WHEN t.effective_status = 'stale' OR t.down_reports = 1
                 OR (SELECT count(*) FROM (
                         SELECT FROM public.system_status_history AS h
                         WHERE h.service_name = t.service_name AND h.status = 'down'
                           AND pystatus._history_hour(h.heartbeat_timestamp) >= pystatus._history_hour(t.began)
                           AND h.heartbeat_timestamp >= t.began
                         LIMIT t.down_reports) AS d) >= t.down_reports THEN 'down'
            END AS action
        FROM timed AS t
    ), opened AS (
        INSERT INTO pystatus.alert_state (rule_id, service_name, down_since, alerted_at)
        SELECT d.rule_id, d.service_name, d.began, now() FROM decided AS d WHERE d.action = 'down'
    ), reminded AS (
        UPDATE pystatus.alert_state AS st SET reminded_at = now(), reminders = st.reminders + 1
        FROM decided AS d
        WHERE d.action = 'reminder' AND st.rule_id = d.rule_id AND st.service_name = d.service_name
    ), closed AS (
        DELETE FROM pystatus.alert_state AS st USING decided AS d
        WHERE d.action = 'recovered' AND st.rule_id = d.rule_id AND st.service_name = d.service_name
    ), entries AS (
        SELECT d.channel, d.action AS kind, d.rule_id, d.service_name,
               pystatus._alert_entry(d.action, d.rule_id, d.service_pattern, d.service_name, d.effective_status,
                                     CASE d.action WHEN 'down' THEN d.began ELSE d.alerted_since END,
                                     CASE d.action WHEN 'recovered' THEN d.began END,
                                     CASE d.action WHEN 'down' THEN 0 WHEN 'reminder' THEN d.reminders + 1
                                                   ELSE d.reminders END,
                                     d.current_task, d.last_heartbeat) AS entry,
               count(*) OVER (PARTITION BY d.channel, d.action) AS due,
               (row_number() OVER (PARTITION BY d.channel, d.action ORDER BY d.service_name, d.rule_id) - 1)
                   / pystatus._alert_group_limit() AS part,
               coalesce((c.options ->> 'group_threshold')::integer, pystatus._alert_group_threshold()) AS threshold
        FROM decided AS d
        JOIN pystatus.alert_channels AS c ON c.name = d.channel
        WHERE d.action IS NOT NULL
    ), queued AS MATERIALIZED (
        -- Each alone, or, when at least the channel's threshold of one kind are
        -- due at once, summed up in one message (each service's open alert is
        -- still its own).
        SELECT e.channel, e.kind, e.rule_id, e.service_name, NULL::varchar(64)[] AS services,
               e.entry || pystatus._alert_header(e.kind, e.channel) AS body, gen_random_uuid() AS key
        FROM entries AS e
        WHERE e.threshold = 0 OR e.due < e.threshold
        UNION ALL
        SELECT e.channel, e.kind, NULL, NULL, array_agg(e.service_name ORDER BY e.service_name, e.rule_id),
               pystatus._alert_header(e.kind, e.channel) || jsonb_build_object(
                   'service', NULL,
                   'services', jsonb_agg(e.entry ORDER BY e.service_name, e.rule_id),
                   'text', pystatus._alert_summary_text(
                       e.kind, array_agg(e.service_name::text ORDER BY e.service_name, e.rule_id))),
               gen_random_uuid()
        FROM entries AS e
        WHERE e.threshold > 0 AND e.due >= e.threshold
        GROUP BY e.channel, e.kind, e.part
    ), inserted AS (
        INSERT INTO pystatus.alert_messages (idempotency_key, channel, rule_id, service_name, services, kind, body)
        SELECT q.key, q.channel, q.rule_id, q.service_name, q.services, q.kind,
               q.body || jsonb_build_object('idempotency_key', q.key)
        FROM queued AS q
        ORDER BY coalesce(q.service_name, q.services[1]), q.rule_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM inserted),
           least(now() + interval '1 hour',
                 min(CASE WHEN d.action = 'reminder' THEN now() + d.remind_every
                          WHEN d.action IS NULL AND d.ready > now() THEN d.ready END))
    INTO messages, next_check
    FROM decided AS d;

    -- The next deadline of a service that may fall silent, and the next edge
    -- of a maintenance window.
    next_check := least(next_check,
        (SELECT min(l.stale_after) FROM pystatus.live_status AS l
         WHERE pystatus.goes_stale(l.reported_status) AND l.stale_after > now()),
        (SELECT min(CASE WHEN o.starts > now() THEN o.starts ELSE o.ends END)
         FROM pystatus.maintenance_occurrences(now(), now() + interval '1 day') AS o));
END;
$$;
COMMENT ON FUNCTION pystatus.evaluate_alerts() IS
    'Turns status changes into alert messages by the rules: records the edges of maintenance '
    'windows as events, then writes the down, reminder and recovery messages that are due, for '
    'every service at once (those of one kind due on a channel together, from its group_threshold '
    'on, as summaries). Returns how many it wrote and when it '
    'should run next (a deadline, a rule''s wait, a window''s edge). One evaluation at a time. '
    'On a hot standby (a read-only replica) it writes nothing: 0 messages, next check in a minute.';

CREATE OR REPLACE FUNCTION pystatus.alert_sweep()
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pystatus.sweep() $$;
COMMENT ON FUNCTION pystatus.alert_sweep() IS
    'pystatus.sweep() for the alert worker (pystatus_alerter), which calls it before each '
    'evaluation, in a transaction of its own, so that a silent service is marked stale within a '
    'second of its deadline rather than at the sweep job''s next minute. On a hot standby it '
    'marks nothing and returns 0, as sweep() does.';

------------------------------------------------------------------------------
-- Delivering: claim, then report the outcome (pystatus/alerts.py)
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus._alert_give_up_after()
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN interval '24 hours';
COMMENT ON FUNCTION pystatus._alert_give_up_after() IS
    'How long a message is retried before it is marked failed.';

-- How many messages of one channel are sent at once, by all workers together:
-- a slow or hanging receiver holds this many of the workers' sends, and the
-- other channels' messages go on being sent beside it.
CREATE OR REPLACE FUNCTION pystatus._alert_sends_per_channel()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 2;
COMMENT ON FUNCTION pystatus._alert_sends_per_channel() IS
    'How many of a channel''s messages are being sent at once, at most, by all workers together.';

-- A channel's messages about one service go out in order: a message waits
-- while an earlier one of its channel about its service is pending, and a
-- summary while one about any of its services is, or an earlier summary
-- (summaries of a channel go out in order: comparing their lists of services
-- would cost the product of their lengths). Each is a probe of an index of
-- the pending queue (20_tables.sql): a claim reads what it takes.
CREATE OR REPLACE FUNCTION pystatus._alert_in_turn(
    message_id bigint, channel text, service_name text, services text[])
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN NOT EXISTS (
        SELECT FROM pystatus.alert_messages AS p
        WHERE p.state = 'pending' AND p.channel = _alert_in_turn.channel
          AND p.service_name = ANY (coalesce(_alert_in_turn.services, ARRAY[_alert_in_turn.service_name]))
          AND p.id < _alert_in_turn.message_id)
    AND NOT EXISTS (
        SELECT FROM pystatus.alert_messages AS p
        WHERE p.state = 'pending' AND p.channel = _alert_in_turn.channel
          AND p.service_name IS NULL AND p.services IS NOT NULL AND p.id < _alert_in_turn.message_id
          AND (_alert_in_turn.services IS NOT NULL
               OR p.services::text[] @> ARRAY[_alert_in_turn.service_name]));
COMMENT ON FUNCTION pystatus._alert_in_turn(bigint, text, text, text[]) IS
    'Whether a message may be sent now: no earlier pending message of its channel is about its '
    'service (for a summary: about one of its services, or an earlier summary). A test message is '
    'always in turn.';

CREATE OR REPLACE FUNCTION pystatus.claim_alert_messages(
    worker text, max_messages integer DEFAULT 10, lease interval DEFAULT interval '3 minutes',
    message_id bigint DEFAULT NULL)
RETURNS TABLE (message_id bigint, attempt integer, idempotency_key uuid, channel text, kind text,
               target text, options jsonb, body jsonb)
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- A claim reads a few rows: compiling its plan would cost more than running it.
SET jit = off
AS $$
    -- SKIP LOCKED: two workers never take the same message; a message
    -- another worker holds (claimed_until ahead) is left to it; after the
    -- lease (that worker died) it is sent again, with the same key.
    WITH one AS (
        -- One message by its id (a test, sent by the command that queued it).
        SELECT m.id FROM pystatus.alert_messages AS m
        WHERE m.id = claim_alert_messages.message_id AND m.state = 'pending'
          AND m.next_attempt_at <= now() AND (m.claimed_until IS NULL OR m.claimed_until < now())
          AND pystatus._alert_in_turn(m.id, m.channel, m.service_name, m.services::text[])
        FOR UPDATE SKIP LOCKED
    ), due AS (
        -- Channel by channel, each channel's due messages in order
        -- (alert_messages_due), as many as it may still send at once: a claim
        -- reads about what it takes, however long the queue, and a channel
        -- whose receiver is slow cannot take every send of the workers.
        SELECT d.id
        FROM pystatus.alert_channels AS c
        CROSS JOIN LATERAL (
            SELECT count(*) AS n FROM pystatus.alert_messages AS f
            WHERE f.channel = c.name AND f.state = 'pending' AND f.claimed_until IS NOT NULL
              AND f.claimed_until >= now()) AS sending
        CROSS JOIN LATERAL (
            SELECT m.id, m.next_attempt_at FROM pystatus.alert_messages AS m
            WHERE m.channel = c.name AND m.state = 'pending' AND m.next_attempt_at <= now()
              AND (m.claimed_until IS NULL OR m.claimed_until < now())
              AND pystatus._alert_in_turn(m.id, m.channel, m.service_name, m.services::text[])
            ORDER BY m.next_attempt_at, m.id
            LIMIT greatest(0, pystatus._alert_sends_per_channel() - sending.n)
            FOR UPDATE OF m SKIP LOCKED) AS d
        WHERE claim_alert_messages.message_id IS NULL
          AND sending.n < pystatus._alert_sends_per_channel()
        ORDER BY d.next_attempt_at, d.id
        LIMIT claim_alert_messages.max_messages
    ), claimed AS (
        UPDATE pystatus.alert_messages AS m
        SET attempts = m.attempts + 1, claimed_until = now() + claim_alert_messages.lease
        WHERE m.id IN (SELECT one.id FROM one UNION ALL SELECT due.id FROM due)
        RETURNING m.*
    ), logged AS (
        INSERT INTO pystatus.alert_attempts (message_id, attempt, started_at, worker)
        SELECT c.id, c.attempts, now(), claim_alert_messages.worker FROM claimed AS c
    )
    SELECT c.id, c.attempts, c.idempotency_key, c.channel, ch.kind, ch.target, ch.options, c.body
    FROM claimed AS c JOIN pystatus.alert_channels AS ch ON ch.name = c.channel
    ORDER BY c.id;
$$;
COMMENT ON FUNCTION pystatus.claim_alert_messages(text, integer, interval, bigint) IS
    'Takes up to max_messages due messages (or only message_id) for this worker for lease (longer '
    'than a send may take), logging the attempt; returns each with its channel. A channel''s '
    'messages about one service go in order, and at most _alert_sends_per_channel() of a channel''s '
    'messages are out at once. Report each outcome with pystatus.finish_alert_attempt().';

CREATE OR REPLACE FUNCTION pystatus.finish_alert_attempt(message_id bigint, attempt integer, error text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_state text;
BEGIN
    UPDATE pystatus.alert_attempts AS a
    SET finished_at = clock_timestamp(), outcome = CASE WHEN finish_alert_attempt.error IS NULL THEN 'sent' ELSE 'failed' END,
        error = left(pystatus.clean_text(finish_alert_attempt.error), 2000)
    WHERE a.message_id = finish_alert_attempt.message_id AND a.attempt = finish_alert_attempt.attempt;
    -- An attempt whose lease ran out (the message was claimed again since) only
    -- says whether it got through: the newer attempt owns the message.
    UPDATE pystatus.alert_messages AS m
    SET state = CASE WHEN finish_alert_attempt.error IS NULL THEN 'sent'
                     WHEN m.state = 'sent' OR m.attempts <> finish_alert_attempt.attempt THEN m.state
                     WHEN m.kind = 'test' THEN 'failed'  -- a test says what happened once
                     WHEN m.created_at < now() - pystatus._alert_give_up_after() THEN 'failed'
                     ELSE 'pending' END,
        sent_at = CASE WHEN finish_alert_attempt.error IS NULL THEN coalesce(m.sent_at, clock_timestamp()) ELSE m.sent_at END,
        claimed_until = CASE WHEN m.attempts = finish_alert_attempt.attempt THEN NULL ELSE m.claimed_until END,
        -- Retries back off: 5 s, 10 s, 20 s ... at most 10 minutes apart.
        next_attempt_at = CASE WHEN finish_alert_attempt.error IS NULL OR m.attempts <> finish_alert_attempt.attempt
                               THEN m.next_attempt_at
                               ELSE clock_timestamp() + least(interval '10 minutes',
                                        interval '5 seconds' * power(2, least(finish_alert_attempt.attempt, 12) - 1)) END
    WHERE m.id = finish_alert_attempt.message_id
    RETURNING m.state INTO v_state;
    RETURN v_state;
END;
$$;
COMMENT ON FUNCTION pystatus.finish_alert_attempt(bigint, integer, text) IS
    'Records how an attempt ended (error NULL: delivered; an error is stored cleaned, as the receiver '
    'may have written it). A failed message is retried with '
    'exponential backoff (5 s doubling, at most 10 minutes apart) until it is sent or 24 hours old '
    '(failed); a test message is not retried. Returns the message''s state.';

CREATE OR REPLACE FUNCTION pystatus.send_test_alert(channel text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_key uuid := gen_random_uuid();
BEGIN
    IF NOT EXISTS (SELECT FROM pystatus.alert_channels AS c WHERE c.name = send_test_alert.channel) THEN
        RAISE EXCEPTION 'unknown channel %', quote_nullable(send_test_alert.channel) USING ERRCODE = 'PS005';
    END IF;
    INSERT INTO pystatus.alert_messages (idempotency_key, channel, kind, body)
    VALUES (v_key, send_test_alert.channel, 'test', jsonb_build_object(
        'version', 1, 'kind', 'test', 'idempotency_key', v_key, 'channel', send_test_alert.channel,
        'database', current_database(), 'created_at', now(),
        'text', format('pystatus test message for channel %s', send_test_alert.channel)))
    RETURNING id INTO v_id;
    PERFORM pg_notify(pystatus._alerts_channel(), '');
    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION pystatus.send_test_alert(text) IS
    'Queues a test message for a channel (delivered by the running worker); returns its id.';

CREATE OR REPLACE FUNCTION pystatus.alert_log(since timestamptz DEFAULT now() - interval '1 day')
RETURNS TABLE (message_id bigint, created_at timestamptz, channel text, service_name text, kind text,
               state text, attempts integer, sent_at timestamptz, last_error text, idempotency_key uuid, body_text text)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.id, m.created_at, m.channel, m.service_name, m.kind, m.state, m.attempts, m.sent_at,
           (SELECT a.error FROM pystatus.alert_attempts AS a WHERE a.message_id = m.id AND a.error IS NOT NULL
            ORDER BY a.attempt DESC LIMIT 1),
           m.idempotency_key, m.body ->> 'text'
    FROM pystatus.alert_messages AS m
    WHERE m.created_at >= alert_log.since
    ORDER BY m.id DESC;
$$;
COMMENT ON FUNCTION pystatus.alert_log(timestamptz) IS
    'The messages written since then, newest first: channel, service, kind, state, attempts and '
    'the last error (the attempts themselves are in pystatus.alert_attempts).';

CREATE OR REPLACE FUNCTION pystatus._expire_alerts()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_until timestamptz := now() - pystatus.history_retention();
    v_events integer;
    v_messages integer;
BEGIN
    DELETE FROM pystatus.status_events WHERE recorded_at < v_until;
    GET DIAGNOSTICS v_events = ROW_COUNT;
    DELETE FROM pystatus.alert_messages WHERE created_at < v_until AND state <> 'pending';
    GET DIAGNOSTICS v_messages = ROW_COUNT;
    RETURN v_events + v_messages;
END;
$$;
COMMENT ON FUNCTION pystatus._expire_alerts() IS
    'Deletes events and delivered or failed messages older than history''s retention (maintain() runs it).';

-- The installation's own health: check() for monitoring (ok false, with the
-- remedy, for each problem) and setup_report() for the DBA after a migrate.
-- The roles' part, _check_roles(), is beside the roles in 90_roles.sql.

SET LOCAL search_path = pg_catalog, pg_temp;

-- Every client compares this with its own sources before it says anything
-- else when a query fails on a missing object: "run pystatus migrate", not
-- "column ... does not exist". Any login may ask, whatever its rights.
CREATE OR REPLACE FUNCTION pystatus.installed_version()
RETURNS TABLE (version text, sources_sha256 text, applied_at timestamptz)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.version, d.sources_sha256, d.applied_at
    FROM pystatus.definitions_applied AS d
    ORDER BY d.applied_at DESC
    LIMIT 1;
$$;
COMMENT ON FUNCTION pystatus.installed_version() IS
    'The pystatus version whose definitions are installed, the checksum of its sql/schema/ files '
    'and when `pystatus migrate` applied them (the newest row of definitions_applied).';

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
    v_overdue record;
    v_bad_names text;
    v_alerts record;
    v_held text;
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

    -- Maintenance defers drops while other transactions hold history; a day
    -- past due, that is a problem to see.
    SELECT c.relname, p.ends INTO v_overdue
    FROM pystatus.history_partitions AS p JOIN pg_class AS c ON c.oid = p.partition
    WHERE NOT p.is_default AND p.ends < now() - v_retention - interval '1 day'
    ORDER BY p.ends LIMIT 1;
    item := 'retention'; ok := v_retention IS NOT NULL AND v_overdue.relname IS NULL;
    detail := CASE WHEN v_retention IS NULL THEN 'none: history is kept forever'
                   WHEN v_overdue.relname IS NOT NULL
                   THEN format('%s, overdue: partition %s ended at %s, more than a day past it; maintenance '
                               'is failing, or deferring because other transactions hold system_status_history '
                               '(run pystatus maintain and read its result)', v_retention, v_overdue.relname,
                               v_overdue.ends)
                   ELSE v_retention::text END;
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

    -- A job whose lock has been held past its period is not running: its
    -- holder (a session of pystatus's owner, or of the alert worker's login
    -- inside a transaction left open) is named, so that it can be ended.
    SELECT string_agg(format('%s held by pid %s (login %s) since %s', h.job, h.holder_pid,
                             coalesce(h.holder_login::text, 'unknown'),
                             coalesce(h.held_since, h.last_run)), '; ' ORDER BY h.job)
    INTO v_held
    FROM pystatus.job_lock_holders() AS h
    WHERE h.holder_pid IS NOT NULL AND h.period IS NOT NULL
      AND coalesce(h.held_since, h.last_run) < now() - h.period;
    item := 'job locks'; ok := v_held IS NULL;
    detail := CASE WHEN ok THEN 'no job waiting on another run'
                   ELSE v_held || ': their runs are skipped meanwhile; end that session '
                        '(SELECT pg_terminate_backend(pid)) if it is stuck' END;
    RETURN NEXT;

    -- Names stored before the naming rule last changed are not re-checked by
    -- the table's constraint: a name with invisible characters can pass for another.
    SELECT string_agg(format('%L (%s)', service_name, pystatus.service_name_problem(service_name)), ', ')
    INTO v_bad_names
    FROM public.system_status WHERE NOT pystatus.is_valid_service_name(service_name);
    item := 'service names'; ok := v_bad_names IS NULL;
    detail := CASE WHEN ok THEN 'every name keeps the naming rule'
                   ELSE 'names that break the naming rule: ' || v_bad_names
                        || ': rename them (UPDATE system_status SET service_name = ...)' END;
    RETURN NEXT;

    -- Alerts, once a rule exists: a message still pending a minute after it
    -- was due means no worker is running (or its channel is failing).
    IF EXISTS (SELECT FROM pystatus.alert_rules) THEN
        SELECT count(*) FILTER (WHERE m.state = 'pending' AND m.created_at < now() - interval '1 minute'
                                  AND m.attempts = 0) AS waiting,
               count(*) FILTER (WHERE m.state = 'pending' AND m.attempts > 0) AS retrying,
               count(*) FILTER (WHERE m.state = 'failed' AND m.created_at > now() - interval '1 day') AS failed,
               (SELECT a.error FROM pystatus.alert_attempts AS a WHERE a.outcome = 'failed'
                ORDER BY a.started_at DESC LIMIT 1) AS last_error
        INTO v_alerts
        FROM pystatus.alert_messages AS m WHERE m.state <> 'sent';
        item := 'alerts'; ok := v_alerts.waiting = 0 AND v_alerts.retrying = 0 AND v_alerts.failed = 0;
        detail := CASE WHEN ok THEN 'every message delivered'
                       ELSE concat_ws('; ',
                           CASE WHEN v_alerts.waiting > 0 THEN v_alerts.waiting
                                || ' messages waiting for more than a minute: is `pystatus alerts run` running?' END,
                           CASE WHEN v_alerts.retrying > 0 THEN v_alerts.retrying || ' being retried' END,
                           CASE WHEN v_alerts.failed > 0 THEN v_alerts.failed || ' failed in the last day' END,
                           'last error: ' || v_alerts.last_error,
                           'see pystatus alerts log') END;
        RETURN NEXT;
    END IF;

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
                           ELSE 'last run ' || v_job.status
                                || coalesce(' at ' || v_job.end_time, '')
                                || coalesce(': ' || nullif(v_job.return_message, ''), '')
                                || CASE WHEN v_job.status = 'failed'
                                        THEN ' (see cron.job_run_details; pg_cron connects as the job''s '
                                             'user: that login needs a password in .pgpass or trust in '
                                             'pg_hba.conf for cron.host)' ELSE '' END END;
            RETURN NEXT;
        END LOOP;
    ELSE
        -- Not verified from here: `pystatus check` reads them where pg_cron lives.
        -- Unknown (NULL), not failing: a healthy install must not page anyone.
        item := 'jobs';
        ok := CASE WHEN pystatus.maintenance_scheduler() = 'none' THEN true END;
        detail := pystatus.maintenance_scheduler()
                  || CASE WHEN ok THEN ': run `pystatus maintain` every minute from another scheduler'
                          ELSE ': unknown, their runs are not visible from this database: pystatus check '
                               '--cron-dsn <pg_cron''s database> reads them there' END;
        RETURN NEXT;
    END IF;
END;
$$;
COMMENT ON FUNCTION pystatus._check_storage() IS
    'pystatus.check() without the roles: pg_partman, partitions premade ahead, default partition '
    'empty, retention, rollups and sweeper keeping up, alerts delivered, pg_cron jobs scheduled and '
    'their last runs.';

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
    ELSIF v_scheduler LIKE 'pg_cron in %database%' THEN
        todo := format('register the jobs there: pystatus schedule --cron-dsn "dbname=%s ..." (%s)',
                       coalesce((SELECT name FROM pystatus._cron_database()), '<pg_cron''s database>'), v_jobs);
    ELSE
        todo := format('no pg_cron: run `pystatus maintain` every minute from another scheduler (%s)',
                       v_jobs);
    END IF;
    RETURN NEXT;

    -- The roles, and whom to grant them to.
    RETURN QUERY
    SELECT r.item, r.detail,
           CASE WHEN NOT r.ok THEN r.detail
                -- The owner administers the roles (WITH ADMIN OPTION): it does not count.
                WHEN NOT EXISTS (SELECT FROM pg_auth_members
                                 WHERE roleid = to_regrole(substr(r.item, 6)) AND NOT admin_option)
                THEN format('grant %s to the logins of %s: GRANT %1$s TO <login>',
                            substr(r.item, 6),
                            CASE r.item WHEN 'role pystatus_writer' THEN 'services'
                                        WHEN 'role pystatus_alerter' THEN 'the alert worker, if you use alerts'
                                        ELSE 'dashboards and monitoring' END) END
    FROM pystatus._check_roles() AS r
    WHERE r.item LIKE 'role %';
END;
$$;
COMMENT ON FUNCTION pystatus.setup_report() IS
    'The installation at a glance (pg_partman, partitions, retention, default partition, '
    'maintenance scheduler, roles), with what is left for the DBA to do in todo.';

-- Prometheus metrics: everything a scrape exposes, in one query
-- (pystatus/metrics.py turns the rows into metric families). Base units, a
-- pystatus_ prefix, and bounded labels: service (the fleet), status (the
-- seven statuses), window (1d, 7d, 30d). A service's status is its own 0/1
-- family, one series per status, so that pystatus_service_up stays one series
-- a service whatever its status (a rule's `for:` does not restart when down
-- turns stale), and the latency is two gauges, not a gauge with a quantile
-- label (which promtool refuses: quantiles belong to summaries).

SET LOCAL search_path = pg_catalog, pg_temp;

-- Runs as its owner: a pystatus_reader login scrapes, and reads history only
-- through this function.
CREATE OR REPLACE FUNCTION pystatus.metrics()
RETURNS TABLE (metric text, service text, status text, time_window text, value double precision)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- A scrape is a few cheap scans: compiling it with JIT, which the planner's
-- row estimates would turn on at large fleets, cost more (90 ms) than the query.
SET jit = off
AS $$
    WITH live AS MATERIALIZED (
        SELECT l.service_name::text AS service, l.effective_status::text AS status, l.seconds_since,
               l.reported_status, l.stale_after,
               -- A scrape has series of a bounded number of services: those
               -- needing attention first, so that the cap never hides one.
               row_number() OVER (ORDER BY pystatus.needs_attention(l.effective_status) DESC, l.service_name)
                   <= (SELECT m.max_metric_services FROM pystatus.limits AS m) AS exported
        FROM pystatus.live_status AS l
    ), exported AS MATERIALIZED (
        SELECT l.service FROM live AS l WHERE l.exported
    ), state AS (
        SELECT s.rolled_until FROM pystatus.rollup_state AS s
    )
    SELECT 'pystatus_service_up', l.service, NULL, NULL,
           (pystatus.status_category(l.status) = 'up')::int::double precision
    FROM live AS l WHERE l.exported
    UNION ALL
    SELECT 'pystatus_service_status', l.service, s.status, NULL, (s.status = l.status)::int::double precision
    FROM live AS l CROSS JOIN unnest(pystatus._statuses()) AS s(status)
    WHERE l.exported
    UNION ALL
    SELECT 'pystatus_service_heartbeat_age_seconds', l.service, NULL, NULL, l.seconds_since
    FROM live AS l WHERE l.exported
    UNION ALL
    -- Kept by refresh_rollups(): a scrape reads three rows a service.
    SELECT 'pystatus_service_uptime_ratio', w.service_name, NULL, w.time_window,
           w.up_us::double precision / (w.up_us + w.down_us)
    FROM pystatus.uptime_windows AS w
    WHERE w.up_us + w.down_us > 0 AND w.service_name IN (SELECT e.service FROM exported AS e)
    UNION ALL
    -- The latency measure over the last rolled-up hour, in seconds.
    SELECT q.metric, r.service_name, NULL, NULL, q.ms / 1000
    -- A scalar subquery, so the planner looks the hour up in the bucket index
    -- (a join with the state row merged all of rollup_hourly: 350 ms at 10,000 services).
    FROM pystatus.rollup_hourly AS r
    CROSS JOIN LATERAL (VALUES ('pystatus_service_latency_p50_seconds', r.latency_p50),
                               ('pystatus_service_latency_p95_seconds', r.latency_p95)) AS q(metric, ms)
    WHERE r.bucket = (SELECT s.rolled_until FROM pystatus.rollup_state AS s) - interval '1 hour'
      AND q.ms IS NOT NULL AND r.service_name IN (SELECT e.service FROM exported AS e)
    UNION ALL
    SELECT 'pystatus_services_not_exported', NULL, NULL, NULL,
           (SELECT count(*) FROM live AS l WHERE NOT l.exported)
    UNION ALL
    SELECT 'pystatus_services', NULL, s.status, NULL,
           (SELECT count(*) FROM live AS l WHERE l.status = s.status)
    FROM unnest(pystatus._statuses()) AS s(status)
    UNION ALL
    -- The installation's health, the cheap figures of check(): the whole of it
    -- validates every name and reads pg_cron's runs, too slow for every scrape.
    SELECT 'pystatus_sweeper_behind_services', NULL, NULL, NULL,
           (SELECT count(*) FROM live AS l
            WHERE l.status = 'stale' AND l.reported_status <> 'stale'
              AND l.stale_after < now() - interval '5 minutes')
    UNION ALL
    SELECT 'pystatus_rollup_lag_seconds', NULL, NULL, NULL,
           extract(epoch FROM now() - state.rolled_until) FROM state
    UNION ALL
    SELECT 'pystatus_partitions_ahead_seconds', NULL, NULL, NULL,
           extract(epoch FROM max(p.ends) - now())
    FROM pystatus.history_partitions AS p WHERE NOT p.is_default
    UNION ALL
    SELECT 'pystatus_default_partition_rows', NULL, NULL, NULL, pystatus.history_default_rows();
$$;
COMMENT ON FUNCTION pystatus.metrics() IS
    'Every Prometheus metric of a scrape, one row per sample: metric name, its labels (service, '
    'status, time_window: NULL where the metric has none) and value (docs/integrations.md, '
    '"Prometheus").';

-- Ping tokens: the HTTP ping endpoint (`pystatus ingest`) reports a service's
-- status for whoever holds one of its tokens, so a cron job or a shell script
-- heartbeats with curl. A token is a random secret shown once; only its
-- SHA-256 is stored, and a table reader cannot turn it back into a token.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION pystatus.add_ping_token(service_name text, note text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_token text;
BEGIN
    PERFORM pystatus._check_heartbeat(add_ping_token.service_name, 'ok', NULL, NULL);
    IF octet_length(add_ping_token.note) > 1024 THEN
        RAISE EXCEPTION 'invalid note: it is % bytes, the limit is 1024 bytes', octet_length(add_ping_token.note)
            USING ERRCODE = 'PS005';
    END IF;
    -- 122 random bits (a version 4 UUID's, from the server's strong random
    -- source), as Healthchecks' ping URLs have. The prefix names the token
    -- in lists; its 32 bits may collide, so a collision draws again.
    LOOP
        v_token := 'ps_' || replace(gen_random_uuid()::text, '-', '');
        BEGIN
            INSERT INTO pystatus.ping_tokens (token_hash, token_prefix, service_name, note)
            VALUES (sha256(convert_to(v_token, 'UTF8')), left(v_token, 11), add_ping_token.service_name,
                    add_ping_token.note);
            RETURN v_token;
        EXCEPTION WHEN unique_violation THEN
            NULL;
        END;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION pystatus.add_ping_token(text, text) IS
    'Makes a secret token that lets the HTTP ping endpoint report this service''s status, and returns '
    'it: the only time it is shown (only its hash is kept). A service may have several (one per '
    'script, say). PS001 for a bad service name, PS005 for a note over 1024 bytes.';

CREATE OR REPLACE FUNCTION pystatus.remove_ping_token(token_prefix text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_service text;
BEGIN
    DELETE FROM pystatus.ping_tokens AS t WHERE t.token_prefix = left(remove_ping_token.token_prefix, 11)
    RETURNING t.service_name INTO v_service;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no ping token %', quote_nullable(left(remove_ping_token.token_prefix, 11))
            USING ERRCODE = 'PS005', HINT = 'pystatus tokens list shows each token''s prefix, ps_ and 8 characters.';
    END IF;
    RETURN v_service;
END;
$$;
COMMENT ON FUNCTION pystatus.remove_ping_token(text) IS
    'Revokes a ping token, named by its prefix (ps_ and 8 characters, as listed) or given whole; '
    'returns its service. Pings with it are refused from the next request on. PS005 if there is none.';

CREATE OR REPLACE FUNCTION pystatus.ping_token_list()
RETURNS TABLE (token_prefix text, service_name text, note text, created_by name, created_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT t.token_prefix, t.service_name::text, t.note, t.created_by, t.created_at
    FROM pystatus.ping_tokens AS t
    ORDER BY t.service_name, t.created_at;
END;
COMMENT ON FUNCTION pystatus.ping_token_list() IS
    'The ping tokens, by prefix (the tokens themselves are not kept).';

-- Runs as its owner: the ingest service's login is a pystatus_writer and
-- cannot read ping_tokens. The copy trigger still holds that login to its
-- allowances (pystatus.service_logins), so with restricted logins it needs
-- one covering the services it has tokens for.
CREATE OR REPLACE FUNCTION pystatus.ping(
    token text,
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
    v_service text;
    v_latency_ms double precision := ping.latency_ms;
    v_last record;
BEGIN
    SELECT t.service_name INTO v_service FROM pystatus.ping_tokens AS t
    WHERE t.token_hash = sha256(convert_to(ping.token, 'UTF8'));
    IF NOT FOUND THEN
        -- The same error for a token never made, revoked, or malformed.
        RAISE EXCEPTION 'unknown ping token' USING ERRCODE = 'PS008';
    END IF;
    -- A job that pinged /start and now reports its end: how long it ran is
    -- its latency, so `trend` tells whether the job is getting slower.
    IF v_latency_ms IS NULL AND ping.status IS DISTINCT FROM 'starting' THEN
        SELECT s.status, s.last_heartbeat INTO v_last FROM public.system_status AS s
        WHERE s.service_name = v_service;
        IF v_last.status = 'starting' THEN
            v_latency_ms := greatest(pystatus._microseconds(clock_timestamp() - v_last.last_heartbeat), 0) / 1000.0;
        END IF;
    END IF;
    RETURN pystatus.heartbeat(v_service, ping.status, ping.current_task, v_latency_ms);
END;
$$;
COMMENT ON FUNCTION pystatus.ping(text, text, text, double precision) IS
    'Records a heartbeat for the service a ping token belongs to (see heartbeat()). Without a '
    'latency, a ping that ends a run begun with status starting records the run''s length in '
    'milliseconds as its latency. PS008 for a token that is unknown, revoked or malformed (the '
    'same error for each); the errors of heartbeat() for bad input. Callers need only EXECUTE '
    '(pystatus_writer).';

-- Roles and rights: pystatus_writer may only heartbeat, pystatus_reader may
-- only read what dashboards and the CLI read, pystatus_alerter may only run
-- the alert worker's three calls; the owner (the role that
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
    FOREACH v_role IN ARRAY ARRAY['pystatus_writer', 'pystatus_reader', 'pystatus_alerter'] LOOP
        IF to_regrole(v_role) IS NULL THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
            EXECUTE format('COMMENT ON ROLE %I IS %L', v_role, CASE v_role
                WHEN 'pystatus_writer' THEN
                    'pystatus: may record heartbeats (pystatus.heartbeat, pystatus.heartbeat_many), nothing else. '
                    'Grant it to the logins services use.'
                WHEN 'pystatus_alerter' THEN
                    'pystatus: may run the alert worker (evaluate alerts, claim messages, report deliveries; '
                    'marks silent services stale), nothing else. Grant it to the login of `pystatus alerts run`.'
                ELSE
                    'pystatus: may read current status and the answers from history (the functions dashboards '
                    'and the CLI call), nothing else. Grant it to dashboards and monitoring.' END);
        END IF;
    END LOOP;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'role % does not exist and % cannot create it: %', v_role, current_user, SQLERRM
        USING ERRCODE = 'PS010',
              HINT = 'As a superuser (or a role with CREATEROLE): '
                     'CREATE ROLE pystatus_writer NOLOGIN; CREATE ROLE pystatus_reader NOLOGIN; '
                     'CREATE ROLE pystatus_alerter NOLOGIN; GRANT pystatus_writer, pystatus_reader, '
                     'pystatus_alerter TO ' || quote_ident(current_user) || ' WITH ADMIN OPTION; '
                     '(the owner grants them to logins); then migrate again.';
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
    PERFORM pystatus._wait_job_lock('service_logins');
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
    ('pystatus_writer', 'EXECUTE', 'FUNCTION pystatus.ping(text, text, text, double precision)'),  -- pystatus ingest
    -- Dashboards and monitoring: the seed dashboard's own query on
    -- system_status, live_status, and the answers (which run as their owner).
    ('pystatus_reader', 'USAGE', 'SCHEMA pystatus'),
    ('pystatus_reader', 'SELECT', 'TABLE public.system_status'),
    ('pystatus_reader', 'SELECT', 'TABLE pystatus.live_status'),
    -- live_status calls these three with the reader's rights.
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.goes_stale(text)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.status_category(text)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.maintenance_occurrences(timestamptz, timestamptz)'),
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
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.cron_database()'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.metrics()'),  -- Prometheus scrapes
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.service_overview(integer, integer, boolean, text)'),  -- the dashboard
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.fleet_counts()'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.needs_attention(text)'),  -- fleet_counts calls it
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.recent_incidents(timestamptz)'),
    -- The alert worker: decide, claim, report (each runs as its owner).
    ('pystatus_alerter', 'USAGE', 'SCHEMA pystatus'),
    ('pystatus_alerter', 'EXECUTE', 'FUNCTION pystatus.alert_sweep()'),
    ('pystatus_alerter', 'EXECUTE', 'FUNCTION pystatus.evaluate_alerts()'),
    ('pystatus_alerter', 'EXECUTE', 'FUNCTION pystatus.claim_alert_messages(text, integer, interval, bigint)'),
    ('pystatus_alerter', 'EXECUTE', 'FUNCTION pystatus.finish_alert_attempt(bigint, integer, text)'),
    -- Every role: what a status write calls with the writer's own rights, for
    -- services that still write system_status directly (granted INSERT and
    -- UPDATE by their DBA, as before pystatus): the rules system_status's
    -- constraints call (with the naming rule's pattern and the status
    -- vocabulary), the two the copy trigger calls, and the constant the
    -- history's late-rows trigger compares with. None reads or writes anything
    -- the caller could not; looking their names up needs the schema's USAGE.
    ('public', 'USAGE', 'SCHEMA pystatus'),
    -- Every client asks which version is installed before it explains an error.
    ('public', 'EXECUTE', 'FUNCTION pystatus.installed_version()'),
    ('public', 'EXECUTE', 'FUNCTION pystatus.is_valid_service_name(text)'),
    ('public', 'EXECUTE', 'FUNCTION pystatus._service_name_pattern()'),
    ('public', 'EXECUTE', 'FUNCTION pystatus._name_characters(text)'),
    ('public', 'EXECUTE', 'FUNCTION pystatus.is_status(text)'),
    ('public', 'EXECUTE', 'FUNCTION pystatus._statuses()'),
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

-- Whether each role holds each right of the list: what check() reports, and
-- what makes migrate apply the definitions again (after a restore without roles).
CREATE OR REPLACE FUNCTION pystatus._role_rights_held()
RETURNS TABLE (grantee name, object text, held boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.grantee, r.object,
           CASE WHEN to_regrole(r.grantee) IS NULL THEN false
                WHEN split_part(r.object, ' ', 1) = 'FUNCTION'
                    THEN has_function_privilege(r.grantee, substr(r.object, 10), r.privilege)
                WHEN split_part(r.object, ' ', 1) = 'TABLE'
                    THEN has_table_privilege(r.grantee, substr(r.object, 7), r.privilege)
                ELSE has_schema_privilege(r.grantee, substr(r.object, 8), r.privilege) END
    FROM pystatus._role_rights() AS r
    WHERE r.grantee <> 'public';
$$;
COMMENT ON FUNCTION pystatus._role_rights_held() IS
    'Each right of _role_rights() but PUBLIC''s, and whether its role holds it (false when the '
    'role does not exist).';

CREATE OR REPLACE FUNCTION pystatus._check_roles()
RETURNS TABLE (item text, ok boolean, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH rights AS (
        SELECT h.grantee, h.object, h.held
        FROM pystatus._role_rights_held() AS h
        WHERE to_regrole(h.grantee) IS NOT NULL
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
            ('pystatus_reader', 'may read status and the answers from history'),
            ('pystatus_alerter', 'may run the alert worker')
        ) AS r(name, summary)
    )
    SELECT 'role ' || name, cardinality(problems) = 0,
           CASE WHEN cardinality(problems) = 0
                THEN summary || coalesce(' (granted to ' || (
                         SELECT string_agg(m.member::regrole::text, ', ' ORDER BY m.member::regrole::text)
                         FROM pg_auth_members AS m WHERE m.roleid = to_regrole(name) AND NOT m.admin_option)
                         || ')', ' (granted to no one yet)')
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
    'The roles'' health: pystatus_writer, pystatus_reader and pystatus_alerter exist and hold what pystatus._role_rights() '
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
    REVOKE ALL ON SCHEMA pystatus FROM PUBLIC, pystatus_writer, pystatus_reader, pystatus_alerter;
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pystatus FROM PUBLIC, pystatus_writer, pystatus_reader, pystatus_alerter;
    REVOKE ALL ON ALL TABLES IN SCHEMA pystatus FROM PUBLIC, pystatus_writer, pystatus_reader, pystatus_alerter;
    REVOKE ALL ON public.system_status, public.system_status_history
        FROM pystatus_writer, pystatus_reader, pystatus_alerter;
    FOR v_right IN SELECT * FROM pystatus._role_rights() LOOP
        EXECUTE format('GRANT %s ON %s TO %s', v_right.privilege, v_right.object,
                       CASE v_right.grantee WHEN 'public' THEN 'PUBLIC' ELSE quote_ident(v_right.grantee) END);
    END LOOP;
END;
$$;

INSERT INTO pystatus.definitions_applied (version, sources_sha256)
VALUES ('0.3.0', 'ceee19514af1479bacac2cc8433322236d2fe4a8fb62e2e2ee1d6bedeb17fd3e');
