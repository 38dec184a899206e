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
