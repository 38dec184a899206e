-- Read functions for dashboards: one uptime figure per day (status-page bars)
-- and the hourly latency series (trend charts), both from the rollups.
-- depends: 0002_history_answers

-- While this script runs, names resolve in pg_catalog first and objects of other
-- schemas only when qualified (transaction-local: it ends with the script).
SET LOCAL search_path = pg_catalog, pg_temp;

CREATE FUNCTION pystatus.daily_uptime(service_name text, days integer DEFAULT 30)
RETURNS TABLE (day date, up_seconds numeric, down_seconds numeric, maintenance_seconds numeric,
               no_data_seconds numeric, uptime double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_origin constant timestamptz := timestamptz '2000-01-01 00:00:00+00';
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

CREATE FUNCTION pystatus.latency_hourly(service_name text, since timestamptz, until timestamptz DEFAULT now())
RETURNS TABLE (hour timestamptz, samples integer, p50 double precision, p95 double precision,
               max double precision)
LANGUAGE sql STABLE
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
