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
-- every refresh and answer, which a fleet pays once per service.
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
        -- hour of rows in memory, not days of them on disk, which is faster
        -- in all.
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
    v_oldest := pystatus._oldest_history();
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

