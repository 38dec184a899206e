-- Batched heartbeats: one call records many (a collector reporting a fleet).
-- depends: 0003_dashboard

-- While this script runs, names resolve in pg_catalog first and objects of other
-- schemas only when qualified (transaction-local: it ends with the script).
SET LOCAL search_path = pg_catalog, pg_temp;

CREATE FUNCTION pystatus.heartbeat_many(
    service_names text[],
    statuses text[],
    current_tasks text[] DEFAULT NULL,
    latencies_ms double precision[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count integer := coalesce(cardinality(service_names), 0);
    v_recorded integer;
    v_bad bigint;
BEGIN
    IF cardinality(statuses) IS DISTINCT FROM v_count
       OR (current_tasks IS NOT NULL AND cardinality(current_tasks) <> v_count)
       OR (latencies_ms IS NOT NULL AND cardinality(latencies_ms) <> v_count) THEN
        RAISE EXCEPTION 'invalid batch: % service names but % statuses, % tasks, % latencies',
            v_count, cardinality(statuses), cardinality(current_tasks), cardinality(latencies_ms)
            USING ERRCODE = 'PS005', HINT = 'The arrays go in step: one element per heartbeat.';
    END IF;
    -- One set-based test; the precise error only for the first bad heartbeat.
    SELECT b.position INTO v_bad
    FROM unnest(service_names, statuses, current_tasks, latencies_ms)
         WITH ORDINALITY AS b(service_name, status, current_task, latency_ms, position)
    WHERE NOT pystatus.is_valid_heartbeat(b.service_name, b.status, b.current_task, b.latency_ms)
    ORDER BY b.position LIMIT 1;
    IF v_bad IS NOT NULL THEN
        BEGIN
            PERFORM pystatus.check_heartbeat(service_names[v_bad], statuses[v_bad],
                                             current_tasks[v_bad], latencies_ms[v_bad]);
        EXCEPTION WHEN SQLSTATE 'PS001' OR SQLSTATE 'PS002' OR SQLSTATE 'PS003' OR SQLSTATE 'PS006' THEN
            RAISE EXCEPTION 'heartbeat % of %: %', v_bad, v_count, SQLERRM USING ERRCODE = SQLSTATE;
        END;
    END IF;
    -- One upsert for the batch; a service named twice keeps its last heartbeat
    -- (one statement cannot update a row twice).
    INSERT INTO public.system_status AS current
        (service_name, status, current_task, latency_ms, last_heartbeat, updated_at)
    SELECT DISTINCT ON (b.service_name) b.service_name, b.status, b.current_task, b.latency_ms,
           clock_timestamp(), clock_timestamp()
    FROM unnest(service_names, statuses,
                coalesce(current_tasks, array_fill(NULL::text, ARRAY[v_count])),
                coalesce(latencies_ms, array_fill(NULL::double precision, ARRAY[v_count])))
         WITH ORDINALITY AS b(service_name, status, current_task, latency_ms, position)
    ORDER BY b.service_name, b.position DESC
    ON CONFLICT (service_name) DO UPDATE
        SET status = EXCLUDED.status,
            current_task = EXCLUDED.current_task,
            latency_ms = EXCLUDED.latency_ms,
            last_heartbeat = EXCLUDED.last_heartbeat,
            updated_at = EXCLUDED.updated_at;
    GET DIAGNOSTICS v_recorded = ROW_COUNT;
    RETURN v_recorded;
END;
$$;
COMMENT ON FUNCTION pystatus.heartbeat_many(text[], text[], text[], double precision[]) IS
    'Records many heartbeats in one call (arrays in step, one element per heartbeat; tasks and '
    'latencies optional). All or nothing: a bad element raises naming its position. Returns the '
    'number of services recorded.';
