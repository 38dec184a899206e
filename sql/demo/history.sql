-- Demo data: 30 days of history at one heartbeat a minute for eight services,
-- each showing one thing pystatus answers. Written straight into the tables by
-- the demo (as their owner), then rolled up; not a migration.

-- While this script runs, names resolve in pg_catalog first and objects of other
-- schemas only when qualified (transaction-local: it ends with the script).
SET LOCAL search_path = pg_catalog, pg_temp;

CREATE TEMP TABLE demo_beats AS
WITH minutes AS (
    -- the newest at now(), so the live heartbeats carry on without a gap
    SELECT now() - (30 * 1440 - 1 - m) * interval '1 minute' AS at, m
    FROM generate_series(0, 30 * 1440 - 1) AS m
)
-- librarian: steady, about 40 ms
SELECT 'librarian' AS service, at, 'ok' AS status, 'serving' AS task, 38 + (m * 7919 % 10) AS latency
FROM minutes
UNION ALL
-- scheduler: flaps, a few minutes down now and then
SELECT 'scheduler', at, CASE WHEN m % 997 < 4 THEN 'down' ELSE 'ok' END,
       CASE WHEN m % 60 < 5 THEN 'planning' ELSE 'idle' END, 20 + (m * 31 % 15)
FROM minutes
UNION ALL
-- mailer: went silent yesterday and never came back
SELECT 'mailer', at, 'ok', 'sending batch', 55 + (m * 13 % 20)
FROM minutes WHERE at < now() - interval '20 hours'
UNION ALL
-- indexer: says it goes into maintenance every Sunday at 02:00 UTC (a heartbeat
-- with status maintenance), is silent until 04:00, then reports ok again
SELECT 'indexer', at,
       CASE WHEN extract(isodow FROM at AT TIME ZONE 'UTC') = 7
                 AND extract(hour FROM at AT TIME ZONE 'UTC') = 2 AND extract(minute FROM at) = 0
            THEN 'maintenance' ELSE 'ok' END,
       'reindexing', 90 + (m * 17 % 30)
FROM minutes
WHERE NOT (extract(isodow FROM at AT TIME ZONE 'UTC') = 7
           AND (extract(hour FROM at AT TIME ZONE 'UTC') = 2 AND extract(minute FROM at) > 0
                OR extract(hour FROM at AT TIME ZONE 'UTC') = 3))
UNION ALL
-- api: getting slower over the last three days
SELECT 'api', at, 'ok', 'serving',
       80 + greatest(0, extract(epoch FROM at - (now() - interval '3 days')) / 3600) + (m * 7 % 12)
FROM minutes
UNION ALL
-- billing: degraded for six hours three days ago
SELECT 'billing', at,
       CASE WHEN at >= now() - interval '3 days' AND at < now() - interval '3 days' + interval '6 hours'
            THEN 'degraded' ELSE 'ok' END,
       'invoicing', 120 + (m * 11 % 40)
FROM minutes
UNION ALL
-- search: reported down for 45 minutes ten days ago, silent for 20 minutes five
-- days ago; silent every night 01:00-01:30 UTC too, inside the 01:00-01:45 maintenance window
-- the demo plans for it (pystatus/demo.py), where silence counts as maintenance
SELECT 'search', at,
       CASE WHEN at >= now() - interval '10 days' AND at < now() - interval '10 days' + interval '45 minutes'
            THEN 'down' ELSE 'ok' END,
       'querying', 15 + (m * 3 % 8)
FROM minutes
WHERE NOT (at >= now() - interval '5 days' AND at < now() - interval '5 days' + interval '20 minutes')
  AND NOT (extract(hour FROM at AT TIME ZONE 'UTC') = 1 AND extract(minute FROM at) < 30)
UNION ALL
-- reports: a batch service, stopped cleanly every night 22:00-06:00 UTC
SELECT 'reports', at,
       CASE WHEN extract(hour FROM at AT TIME ZONE 'UTC') = 22 AND extract(minute FROM at) = 0 THEN 'stopping'
            WHEN extract(hour FROM at AT TIME ZONE 'UTC') = 6 AND extract(minute FROM at) = 0 THEN 'starting'
            ELSE 'ok' END,
       'rendering', 300 + (m * 19 % 100)
FROM minutes
WHERE extract(hour FROM at AT TIME ZONE 'UTC') NOT BETWEEN 22 AND 23
  AND extract(hour FROM at AT TIME ZONE 'UTC') NOT BETWEEN 0 AND 5
   OR (extract(hour FROM at AT TIME ZONE 'UTC') = 22 AND extract(minute FROM at) = 0);

-- The newest beat of each service becomes its current row (the trigger writes
-- its history row); the others go straight to history. A backfill, as
-- pystatus.record_heartbeat() announces its own: times older than a day pass.
SELECT set_config('pystatus.backfilling', 'on', true);
INSERT INTO public.system_status (service_name, status, current_task, latency_ms, last_heartbeat, updated_at)
SELECT DISTINCT ON (service) service, status, task, latency, at, now()
FROM demo_beats ORDER BY service, at DESC;

INSERT INTO public.system_status_history (heartbeat_timestamp, service_name, status, current_task, latency_ms)
SELECT b.at, b.service, b.status, b.task, b.latency
FROM demo_beats AS b
JOIN public.system_status AS s ON s.service_name = b.service AND b.at < s.last_heartbeat;

-- The next pystatus.refresh_rollups() rolls the whole month up at once,
-- rather than service by service.
TRUNCATE pystatus.rollup_dirty;
UPDATE pystatus.rollup_state SET rolled_until = date_trunc('hour', now() - interval '31 days');
