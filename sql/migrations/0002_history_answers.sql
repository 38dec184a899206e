-- Answers from history: live status with staleness, transitions, incidents,
-- time-weighted uptime (from hourly and daily rollups), latency trends and
-- task durations.
--
-- The model, in one place (README, "How pystatus reads history"):
--   * a history row's status holds from its time until the next row;
--   * a service silent for longer than expected_interval + grace is stale
--     from that deadline on, unless its last status was stopping or
--     maintenance (planned, so silence is expected) or stale already;
--   * categories: up = ok, degraded; down = down, stale;
--     maintenance = maintenance; no data = starting, stopping, and any time
--     before a service's first heartbeat or after now.
-- depends: 0001_foundation

------------------------------------------------------------------------------
-- Expectations and the status model
------------------------------------------------------------------------------

-- While this script runs, names resolve in pg_catalog first and objects of other
-- schemas only when qualified (transaction-local: it ends with the script).
SET LOCAL search_path = pg_catalog, pg_temp;

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

CREATE FUNCTION pystatus.set_expectations(
    service_name text,
    expected_interval interval,
    grace interval DEFAULT interval '60 seconds')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    PERFORM pystatus.check_heartbeat(set_expectations.service_name, 'ok', NULL, NULL);
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

CREATE FUNCTION pystatus.goes_stale(p_status text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN p_status NOT IN ('stale', 'stopping', 'maintenance');
COMMENT ON FUNCTION pystatus.goes_stale(text) IS
    'Whether silence past the deadline turns this status stale: not for stopping and maintenance '
    '(the service said it would be quiet) nor for stale itself.';

CREATE FUNCTION pystatus.status_category(p_status text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN p_status IN ('ok', 'degraded') THEN 'up'
    WHEN p_status IN ('down', 'stale') THEN 'down'
    WHEN p_status = 'maintenance' THEN 'maintenance'
    ELSE 'no data'  -- starting, stopping: planned transitions, neither up nor down
END;
COMMENT ON FUNCTION pystatus.status_category(text) IS
    'How a status counts for uptime: up (ok, degraded), down (down, stale), maintenance, '
    'or no data (starting, stopping).';

CREATE FUNCTION pystatus.microseconds(p_duration interval)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (extract(epoch FROM p_duration) * 1000000)::bigint;
COMMENT ON FUNCTION pystatus.microseconds(interval) IS
    'A duration in whole microseconds: rollups add these exactly.';

------------------------------------------------------------------------------
-- Live status and the sweeper
------------------------------------------------------------------------------

CREATE VIEW pystatus.live_status AS
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

CREATE FUNCTION pystatus.sweep()
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

CREATE FUNCTION pystatus.segments(service_name text, since timestamptz, until timestamptz)
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

CREATE FUNCTION pystatus.transitions(
    service_name text, since timestamptz, until timestamptz DEFAULT now())
RETURNS TABLE (service_name text, from_status text, to_status text, at timestamptz)
LANGUAGE sql STABLE
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

CREATE FUNCTION pystatus.incidents(
    service_name text, since timestamptz, until timestamptz DEFAULT now())
RETURNS TABLE (service_name text, started timestamptz, ended timestamptz, duration interval, cause text)
LANGUAGE sql STABLE
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

CREATE FUNCTION pystatus.mark_rollups_dirty()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO pystatus.rollup_dirty (service_name, since) VALUES (NEW.service_name, NEW.heartbeat_timestamp);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION pystatus.mark_rollups_dirty() IS
    'Trigger function: records that a late history row needs its rollups recomputed.';

-- Heartbeats are dated after their transaction starts, so this WHEN clause,
-- evaluated without calling any function, only fires for backfills.
CREATE TRIGGER system_status_history_late_rows
    AFTER INSERT ON public.system_status_history
    FOR EACH ROW WHEN (NEW.heartbeat_timestamp < NEW.created_at - interval '5 minutes')
    EXECUTE FUNCTION pystatus.mark_rollups_dirty();
COMMENT ON TRIGGER system_status_history_late_rows ON public.system_status_history IS
    'Rows dated more than 5 minutes before they were written (backfills) mark rollups dirty.';

CREATE FUNCTION pystatus.rollup_buckets(
    service_name text, since timestamptz, until timestamptz, width interval)
RETURNS SETOF pystatus.rollup_hourly
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH split AS (
        SELECT g.service_name, b.bucket, pystatus.status_category(g.status) AS category,
               pystatus.microseconds(least(g.ends, b.bucket + rollup_buckets.width)
                                     - greatest(g.starts, b.bucket)) AS us
        FROM pystatus.segments(rollup_buckets.service_name, rollup_buckets.since, rollup_buckets.until) AS g
        CROSS JOIN LATERAL generate_series(
            date_bin(rollup_buckets.width, g.starts, timestamptz '2000-01-01 00:00:00+00'),
            g.ends - interval '1 microsecond', rollup_buckets.width) AS b(bucket)
    ), times AS (
        SELECT s.service_name, s.bucket,
               coalesce(sum(s.us) FILTER (WHERE s.category = 'up'), 0) AS up_us,
               coalesce(sum(s.us) FILTER (WHERE s.category = 'down'), 0) AS down_us,
               coalesce(sum(s.us) FILTER (WHERE s.category = 'maintenance'), 0) AS maintenance_us
        FROM split AS s GROUP BY s.service_name, s.bucket
    ), beats AS (
        SELECT sv.service_name::text AS service_name,
               date_bin(rollup_buckets.width, h.heartbeat_timestamp, timestamptz '2000-01-01 00:00:00+00') AS bucket,
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
              AND h1.heartbeat_timestamp >= rollup_buckets.since
              AND h1.heartbeat_timestamp < rollup_buckets.until
            OFFSET 0
        ) AS h
        WHERE rollup_buckets.service_name IS NULL OR sv.service_name = rollup_buckets.service_name
        GROUP BY 1, 2
    )
    SELECT coalesce(t.service_name, b.service_name), coalesce(t.bucket, b.bucket),
           coalesce(t.up_us, 0), coalesce(t.down_us, 0), coalesce(t.maintenance_us, 0),
           coalesce(b.heartbeats, 0)::integer, coalesce(b.latency_count, 0)::integer,
           b.latency_avg, b.latency_p50, b.latency_p95, b.latency_max
    FROM times AS t
    FULL JOIN beats AS b ON b.service_name = t.service_name AND b.bucket = t.bucket;
$$;
COMMENT ON FUNCTION pystatus.rollup_buckets(text, timestamptz, timestamptz, interval) IS
    'Computes rollup rows from raw history for [since, until) in buckets of width (1 hour, 1 day), '
    'aligned to UTC. service_name NULL: every service.';

CREATE FUNCTION pystatus.roll_up(p_service_name text, p_from timestamptz, p_to timestamptz)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_day_from timestamptz := date_bin('1 day', p_from, timestamptz '2000-01-01 00:00:00+00');
    v_day_to timestamptz := date_bin('1 day', p_to, timestamptz '2000-01-01 00:00:00+00');
    v_rows integer;
BEGIN
    DELETE FROM pystatus.rollup_hourly
    WHERE (p_service_name IS NULL OR service_name = p_service_name) AND bucket >= p_from AND bucket < p_to;
    INSERT INTO pystatus.rollup_hourly
    SELECT * FROM pystatus.rollup_buckets(p_service_name, p_from, p_to, interval '1 hour');
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    -- Whole days that the hours touched and that have ended by p_to: times and
    -- counts add up from the hours; latency statistics come from the day's raw rows.
    IF v_day_from < v_day_to THEN
        DELETE FROM pystatus.rollup_daily
        WHERE (p_service_name IS NULL OR service_name = p_service_name)
          AND bucket >= v_day_from AND bucket < v_day_to;
        INSERT INTO pystatus.rollup_daily
        SELECT d.service_name, d.bucket, d.up_us, d.down_us, d.maintenance_us, d.heartbeats,
               coalesce(l.latency_count, 0), l.latency_avg, l.latency_p50, l.latency_p95, l.latency_max
        FROM (
            SELECT r.service_name, date_bin('1 day', r.bucket, timestamptz '2000-01-01 00:00:00+00') AS bucket,
                   sum(r.up_us) AS up_us, sum(r.down_us) AS down_us,
                   sum(r.maintenance_us) AS maintenance_us, sum(r.heartbeats) AS heartbeats
            FROM pystatus.rollup_hourly AS r
            WHERE (p_service_name IS NULL OR r.service_name = p_service_name)
              AND r.bucket >= v_day_from AND r.bucket < v_day_to
            GROUP BY 1, 2
        ) AS d
        LEFT JOIN (
            SELECT h.service_name,
                   date_bin('1 day', h.heartbeat_timestamp, timestamptz '2000-01-01 00:00:00+00') AS bucket,
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
            WHERE p_service_name IS NULL OR sv.service_name = p_service_name
            GROUP BY 1, 2
        ) AS l ON l.service_name = d.service_name AND l.bucket = d.bucket;
    END IF;
    RETURN v_rows;
END;
$$;
COMMENT ON FUNCTION pystatus.roll_up(text, timestamptz, timestamptz) IS
    'Recomputes the hourly rollups in [p_from, p_to) and the daily ones of the days that ended in '
    'it, for one service or (NULL) all. Returns the hourly rows written.';

CREATE FUNCTION pystatus.refresh_rollups()
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_state pystatus.rollup_state;
    -- An hour is rolled up 5 minutes after it ends, once its heartbeats have committed.
    v_to timestamptz := date_bin('1 hour', now() - interval '5 minutes', timestamptz '2000-01-01 00:00:00+00');
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
            v_recomputed := v_recomputed + pystatus.roll_up(
                v_dirty.service_name,
                date_bin('1 hour', v_dirty.since, timestamptz '2000-01-01 00:00:00+00'),
                v_state.rolled_until);
        END IF;
    END LOOP;
    IF v_to > v_state.rolled_until THEN
        v_new := pystatus.roll_up(NULL, v_state.rolled_until, v_to);
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

CREATE FUNCTION pystatus.set_rollup_retention(retention interval)
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

------------------------------------------------------------------------------
-- Uptime
------------------------------------------------------------------------------

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

CREATE FUNCTION pystatus.compute_uptime(
    p_service_name text, p_since timestamptz, p_until timestamptz, p_use_rollups boolean)
RETURNS SETOF pystatus.uptime_report
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_origin constant timestamptz := timestamptz '2000-01-01 00:00:00+00';
    v_until timestamptz := greatest(least(p_until, now()), p_since);
    v_hours_from timestamptz;
    v_hours_to timestamptz;
    v_days_from timestamptz;
    v_days_to timestamptz;
BEGIN
    IF p_since IS NULL OR p_until IS NULL OR NOT isfinite(p_since) OR NOT isfinite(p_until) THEN
        RAISE EXCEPTION 'invalid window [%, %): both ends must be finite', p_since, p_until
            USING ERRCODE = 'PS005';
    END IF;
    -- Whole rolled-up hours inside the window, and whole days inside those.
    v_hours_from := date_bin('1 hour', p_since, v_origin);
    IF v_hours_from < p_since THEN
        v_hours_from := v_hours_from + interval '1 hour';
    END IF;
    -- Rollups hold hours before rolled_until, except where late rows wait for
    -- the next refresh: those are read from raw history until then.
    v_hours_to := least(date_bin('1 hour', v_until, v_origin),
                        (SELECT rolled_until FROM pystatus.rollup_state),
                        (SELECT date_bin('1 hour', min(d.since), v_origin) FROM pystatus.rollup_dirty AS d
                         WHERE p_service_name IS NULL OR d.service_name = p_service_name));
    IF NOT p_use_rollups OR v_hours_from >= v_hours_to THEN
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
        WHERE p_service_name IS NULL
        UNION ALL
        SELECT p_service_name WHERE p_service_name IS NOT NULL
    ), raw AS (
        SELECT g.service_name, pystatus.status_category(g.status) AS category,
               pystatus.microseconds(g.ends - g.starts) AS us
        FROM pystatus.segments(p_service_name, p_since, v_hours_from) AS g
        UNION ALL
        SELECT g.service_name, pystatus.status_category(g.status),
               pystatus.microseconds(g.ends - g.starts)
        FROM pystatus.segments(p_service_name, v_hours_to, v_until) AS g
    ), rolled AS (
        SELECT r.service_name::text AS service_name, r.up_us, r.down_us, r.maintenance_us
        FROM pystatus.rollup_hourly AS r
        WHERE (p_service_name IS NULL OR r.service_name = p_service_name)
          AND ((r.bucket >= v_hours_from AND r.bucket < v_days_from)
               OR (r.bucket >= v_days_to AND r.bucket < v_hours_to))
        UNION ALL
        SELECT r.service_name::text, r.up_us, r.down_us, r.maintenance_us
        FROM pystatus.rollup_daily AS r
        WHERE (p_service_name IS NULL OR r.service_name = p_service_name)
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
    SELECT t.service_name, p_since, v_until,
           round(t.up_us / 1e6, 6), round(t.down_us / 1e6, 6), round(t.maintenance_us / 1e6, 6),
           round((pystatus.microseconds(v_until - p_since) - t.up_us - t.down_us - t.maintenance_us) / 1e6, 6),
           t.up_us::double precision / nullif(t.up_us + t.down_us, 0)
    FROM totals AS t
    ORDER BY t.service_name;
END;
$$;
COMMENT ON FUNCTION pystatus.compute_uptime(text, timestamptz, timestamptz, boolean) IS
    'Uptime over [since, least(until, now())), from rollups for the whole hours and days they '
    'hold and from raw history for the rest (p_use_rollups), or from raw history only.';

CREATE FUNCTION pystatus.uptime(service_name text, since timestamptz, until timestamptz DEFAULT now())
RETURNS SETOF pystatus.uptime_report
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM pystatus.compute_uptime(uptime.service_name, uptime.since, uptime.until, true);
$$;
COMMENT ON FUNCTION pystatus.uptime(text, timestamptz, timestamptz) IS
    'Time-weighted uptime of a service (NULL: every service) over [since, until), fast from rollups.';

CREATE FUNCTION pystatus.uptime_raw(service_name text, since timestamptz, until timestamptz DEFAULT now())
RETURNS SETOF pystatus.uptime_report
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM pystatus.compute_uptime(uptime_raw.service_name, uptime_raw.since, uptime_raw.until, false);
$$;
COMMENT ON FUNCTION pystatus.uptime_raw(text, timestamptz, timestamptz) IS
    'pystatus.uptime() computed from raw history only: the reference the rollups must equal.';

CREATE FUNCTION pystatus.uptime_month(service_name text, month date, time_zone text DEFAULT 'UTC')
RETURNS SETOF pystatus.uptime_report
LANGUAGE sql STABLE
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

------------------------------------------------------------------------------
-- Is it getting slower? Latency trend and task durations
------------------------------------------------------------------------------

CREATE FUNCTION pystatus.trend(
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

CREATE FUNCTION pystatus.task_durations(
    service_name text, since timestamptz, until timestamptz DEFAULT now())
RETURNS TABLE (service_name text, task text, started timestamptz, ended timestamptz, duration interval)
LANGUAGE sql STABLE
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

------------------------------------------------------------------------------
-- Scheduling: the sweeper and the rollups every minute
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus.maintenance_jobs()
RETURNS TABLE (job_name text, schedule text, command text, database text)
LANGUAGE sql STABLE
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

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        PERFORM pystatus.schedule_maintenance();
    END IF;
END;
$$;
