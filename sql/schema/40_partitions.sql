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

-- No index of history gives its oldest row, and a min() over the table reads
-- every partition: the default partition is read, then partitions oldest first
-- until one has rows.
CREATE OR REPLACE FUNCTION pystatus._oldest_history()
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_partition record;
    v_found timestamptz;
    v_oldest timestamptz;
BEGIN
    FOR v_partition IN
        SELECT p.partition, p.is_default FROM pystatus.history_partitions AS p
        ORDER BY p.is_default DESC, p.starts
    LOOP
        EXECUTE format('SELECT min(heartbeat_timestamp) FROM %s', v_partition.partition) INTO v_found;
        v_oldest := least(v_oldest, v_found);
        IF v_found IS NOT NULL AND NOT v_partition.is_default THEN
            RETURN v_oldest;
        END IF;
    END LOOP;
    RETURN v_oldest;
END;
$$;
COMMENT ON FUNCTION pystatus._oldest_history() IS
    'The time of history''s oldest row (NULL when it has none), reading only the partitions '
    'that can hold it.';

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
    -- (heartbeats went on in between), then leaves the work to its next run:
    -- one long wait would hold every heartbeat that arrived meanwhile.
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
