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
-- row estimates would turn on at large fleets, cost more than the query.
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
    -- (a join with the state row merged all of rollup_hourly).
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
