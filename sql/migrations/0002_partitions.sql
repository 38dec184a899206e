-- pg_partman takes over system_status_history: partitions premade ahead,
-- expired ones dropped. Works with pg_partman 4.x ('native') and 5.x ('range').
--
-- Settings read at migration time (custom settings, e.g. through PGOPTIONS or
-- `pystatus migrate --partition-interval ... --retention ...`):
--   pystatus.partition_interval  default '1 month'
--   pystatus.retention           default '60 days'
--   pystatus.premake             default 4 (partitions made ahead of now)
-- depends: 0001_status_and_history

CREATE FUNCTION pystatus.partman_schema()
RETURNS name
LANGUAGE plpgsql STABLE
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
        CREATE SCHEMA IF NOT EXISTS partman;
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
    IF v_interval < interval '1 hour' THEN
        RAISE EXCEPTION 'invalid pystatus.partition_interval %: must be at least 1 hour', v_interval;
    END IF;
    IF v_retention <= interval '0' THEN
        RAISE EXCEPTION 'invalid pystatus.retention %: must be positive', v_retention;
    END IF;
    IF v_premake < 1 THEN
        RAISE EXCEPTION 'invalid pystatus.premake %: must be at least 1', v_premake;
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

CREATE FUNCTION pystatus.maintain()
RETURNS jsonb
LANGUAGE plpgsql
SET "TimeZone" = 'UTC'
AS $$
DECLARE
    v_schema name := pystatus.partman_schema();
    v_before text[];
    v_after text[];
    v_moved bigint := 0;
    v_holes timestamptz[];
BEGIN
    IF pg_is_in_recovery() THEN
        RETURN jsonb_build_object('skipped', 'this server is a replica');
    END IF;
    SELECT coalesce(array_agg(partition::text), '{}') INTO v_before FROM pystatus.history_partitions;

    -- Rows in the default partition (maintenance was missed for longer than the
    -- premade partitions last) block creating the partitions they belong in:
    -- move them first.
    IF pystatus.history_default_rows() > 0 THEN
        v_moved := pystatus.move_default_rows();
        RAISE WARNING 'moved % history rows out of the default partition', v_moved
            USING HINT = 'Maintenance did not run for a while: check its schedule.';
    END IF;

    EXECUTE format('SELECT %I.run_maintenance(p_parent_table := %L, p_jobmon := false)',
                   v_schema, 'public.system_status_history');

    -- pg_partman premakes after the newest partition only; also fill any hole
    -- from the oldest partition to the premade horizon (e.g. a partition
    -- dropped by hand), stepping from an existing bound to keep alignment.
    EXECUTE format($q$
        SELECT array_agg(t) FROM %I.part_config AS c,
            generate_series((SELECT min(starts) FROM pystatus.history_partitions),
                            now() + c.premake * c.partition_interval::interval,
                            c.partition_interval::interval) AS t
        WHERE c.parent_table = $1
          AND NOT EXISTS (SELECT FROM pystatus.history_partitions AS p
                          WHERE t >= p.starts AND t < p.ends)$q$, v_schema)
        INTO v_holes USING 'public.system_status_history';
    IF v_holes IS NOT NULL THEN
        EXECUTE format('SELECT %I.create_partition_time(p_parent_table := $1, p_partition_times := $2)',
                       v_schema)
            USING 'public.system_status_history', v_holes;
    END IF;

    SELECT coalesce(array_agg(partition::text), '{}') INTO v_after FROM pystatus.history_partitions;
    RETURN jsonb_build_object(
        'created', (SELECT coalesce(jsonb_agg(p ORDER BY p), '[]') FROM unnest(v_after) AS p WHERE p <> ALL (v_before)),
        'dropped', (SELECT coalesce(jsonb_agg(p ORDER BY p), '[]') FROM unnest(v_before) AS p WHERE p <> ALL (v_after)),
        'moved_from_default', v_moved);
END;
$$;
COMMENT ON FUNCTION pystatus.maintain() IS
    'Partition maintenance for system_status_history: moves rows out of the default partition, '
    'drops partitions past retention, premakes partitions ahead and fills holes. Run by pg_cron '
    '(or `pystatus maintain`); returns the partitions created and dropped and the rows moved.';

CREATE FUNCTION pystatus.history_default_rows()
RETURNS bigint
LANGUAGE plpgsql STABLE
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
    EXECUTE format('SELECT %I.partition_data_time(p_parent_table := %L, p_batch_count := %s)',
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
    at timestamptz)
RETURNS boolean
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_oldest timestamptz;
BEGIN
    PERFORM pystatus.check_heartbeat(record_heartbeat.service_name, record_heartbeat.status,
                                     record_heartbeat.current_task);
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
        (service_name, status, current_task, last_heartbeat, updated_at)
    VALUES (record_heartbeat.service_name, record_heartbeat.status, record_heartbeat.current_task,
            record_heartbeat.at, clock_timestamp())
    ON CONFLICT (service_name) DO UPDATE
        SET status = EXCLUDED.status,
            current_task = EXCLUDED.current_task,
            last_heartbeat = EXCLUDED.last_heartbeat,
            updated_at = EXCLUDED.updated_at
        WHERE current.last_heartbeat <= EXCLUDED.last_heartbeat;
    IF FOUND THEN
        RETURN true;  -- the trigger wrote the history row
    END IF;
    -- Older than the current row: history only.
    INSERT INTO public.system_status_history (heartbeat_timestamp, service_name, status, current_task)
    VALUES (record_heartbeat.at, record_heartbeat.service_name, record_heartbeat.status,
            record_heartbeat.current_task);
    RETURN false;
END;
$$;
COMMENT ON FUNCTION pystatus.record_heartbeat(text, text, text, timestamptz) IS
    'For imports and backfills: records a heartbeat at an explicit past time. It becomes the '
    'current status only if it is not older than the service''s last heartbeat (returns true); '
    'otherwise it goes to history only (returns false). Times in the future or before the oldest '
    'partition raise PS004.';
