-- The timeline: history read as time-weighted segments, each row's status until
-- the next row and stale from a silent service's deadline on, and which parts
-- of a window the rollups hold instead. Every answer of 50_answers.sql reads
-- history through these functions.

SET LOCAL search_path = pg_catalog, pg_temp;

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
-- every call (most of the time of a one-hour answer). It reads
-- any number of spans at once (a multirange): the two raw edges of an uptime,
-- or only the hours in which rollups saw a service down, for its incidents.
-- segments() below is its public face, for one span, under the API's names.
-- JIT off: the planner cannot tell how many spans and services a call reads,
-- and its estimates for the fleet (millions) made PostgreSQL compile the query
-- to machine code at every custom plan, which cost far more than the query.
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
    -- of history, most of the call. Those calls run the session's
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
