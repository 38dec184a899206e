-- Answers from history: live status with staleness, transitions, incidents,
-- time-weighted uptime (from the rollups of 60_rollups.sql), latency trends
-- and task durations, all read through the timeline of 48_timeline.sql. The
-- status model they share is in 10_rules.sql; the sweeper, which writes what
-- silence means, is a job (70_jobs.sql).

SET LOCAL search_path = pg_catalog, pg_temp;

-- The answers that pystatus_reader may call (90_roles.sql) run as their owner
-- (SECURITY DEFINER): a reader needs no right on history or the rollups, and
-- reads them only through these functions.

------------------------------------------------------------------------------
-- What a question names: a window, a service
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus.max_window()
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN interval '3660 days';
COMMENT ON FUNCTION pystatus.max_window() IS
    'The longest window a question may span: ten years, longer than any history or rollup is kept.';

-- The text as the person wrote it, so that the error quotes it as written.
CREATE OR REPLACE FUNCTION pystatus.checked_window(span text, label text DEFAULT 'window')
RETURNS interval
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_span interval := checked_window.span::interval;
BEGIN
    IF v_span IS NULL OR v_span <= interval '0' THEN
        RAISE EXCEPTION '% %: must be a positive interval, e.g. 12h', label, quote_nullable(span)
            USING ERRCODE = 'PS005';
    END IF;
    IF v_span > pystatus.max_window() THEN
        RAISE EXCEPTION '% %: must be at most % days', label, quote_literal(span),
            extract(day FROM pystatus.max_window())
            USING ERRCODE = 'PS005';
    END IF;
    RETURN v_span;
END;
$$;
COMMENT ON FUNCTION pystatus.checked_window(text, text) IS
    'A window written as text (''12h'', ''7 days''), as an interval; PS005, naming it by label, '
    'unless it is positive and at most max_window().';

CREATE OR REPLACE FUNCTION pystatus.window_start(since timestamptz, span text, label text DEFAULT 'window')
RETURNS timestamptz
LANGUAGE sql STABLE
RETURN coalesce(since, now() - pystatus.checked_window(span, label));
COMMENT ON FUNCTION pystatus.window_start(timestamptz, text, text) IS
    'Where a window starts: since when given, else span (checked_window()) before now().';

-- Runs with the caller's rights: it names only services the caller may read.
CREATE OR REPLACE FUNCTION pystatus.known_service(service_name text, required boolean DEFAULT true)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_close text;
    v_wanted text[];
BEGIN
    IF service_name IS NULL OR NOT required
       OR EXISTS (SELECT FROM public.system_status AS s WHERE s.service_name = known_service.service_name) THEN
        RETURN service_name;
    END IF;
    IF NOT pystatus.is_valid_service_name(service_name) THEN
        -- No service can have it: nothing is close, and the work stays bounded.
        RAISE EXCEPTION 'no service named %', quote_literal(left(service_name, 80))
            || CASE WHEN char_length(service_name) > 80 THEN '...' ELSE '' END
            USING ERRCODE = 'PS011';
    END IF;
    -- Close names by their shared pairs of letters (Dice's coefficient), the
    -- three closest with at least half their pairs in common: read only when
    -- the name is unknown.
    v_wanted := ARRAY(SELECT DISTINCT substr(lower(service_name), i, 2)
                      FROM generate_series(1, greatest(char_length(service_name) - 1, 1)) AS i);
    SELECT string_agg(quote_literal(c.name), ', ' ORDER BY c.score DESC, c.name) INTO v_close
    FROM (SELECT n.name, 2.0 * cardinality(ARRAY(SELECT unnest(n.pairs) INTERSECT SELECT unnest(v_wanted)))
                         / (cardinality(n.pairs) + cardinality(v_wanted)) AS score
          FROM (SELECT s.service_name AS name,
                       ARRAY(SELECT DISTINCT substr(lower(s.service_name), i, 2)
                             FROM generate_series(1, greatest(char_length(s.service_name) - 1, 1)) AS i) AS pairs
                FROM public.system_status AS s) AS n
          ORDER BY score DESC, n.name
          LIMIT 3) AS c
    WHERE c.score >= 0.5;
    RAISE EXCEPTION 'no service named %',
        quote_literal(left(service_name, 80)) || CASE WHEN char_length(service_name) > 80 THEN '...' ELSE '' END
        || coalesce(' (did you mean ' || v_close || '?)', '')
        USING ERRCODE = 'PS011';
END;
$$;
COMMENT ON FUNCTION pystatus.known_service(text, boolean) IS
    'The service name if the service has reported (NULL, every service, passes too, and any name '
    'when not required); else PS011, naming up to three close names of services the caller may read.';

------------------------------------------------------------------------------
-- Live status
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
CROSS JOIN LATERAL (SELECT coalesce(e.expected_interval, pystatus.default_expected_interval()) AS expected_interval,
                           coalesce(e.grace, pystatus.default_grace()) AS grace) AS d
CROSS JOIN LATERAL (SELECT s.last_heartbeat + d.expected_interval + d.grace AS stale_after) AS x
CROSS JOIN LATERAL (SELECT CASE WHEN pystatus.goes_stale(s.status) AND now() > x.stale_after
                                THEN 'stale' ELSE s.status::text END AS status) AS r
LEFT JOIN in_window AS m ON m.service_name = s.service_name;
COMMENT ON VIEW pystatus.live_status IS
    'Every service as a dashboard should show it: effective_status is stale once the service '
    'has been silent past stale_after (last_heartbeat + expected_interval + grace), even if it '
    'never said so, and maintenance instead of down or stale inside a maintenance window (open '
    'until maintenance_until). Reads system_status and the windows open now only.';

------------------------------------------------------------------------------
-- Transitions
------------------------------------------------------------------------------

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

-- Incidents are read from the rollups' spans (the current hour's too); raw
-- history only at the window's edges and, in hours rolled up before spans were kept, in those
-- whose rollups saw the service down (an incident never crosses a skipped
-- hour, which rollups saw wholly up).
-- PL/pgSQL, as _segments(): a plan per call that knows whether one service or
-- all are asked for (an SQL function's plan does not, and scans every
-- service's rollups), and no JIT compilation for the planner's guesses. A
-- plan per call, always: after five calls PostgreSQL may keep a generic plan
-- for the session, and a dashboard's connection that read the fleet then
-- read one service's incidents several times slower.
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
    -- there are none).
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
        -- a function per row, a large part of the fleet's answer).
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

