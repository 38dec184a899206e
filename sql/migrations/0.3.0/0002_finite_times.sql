-- A status's time is finite: 'infinity' in last_heartbeat broke every reader
-- (live_status, the dashboard) and maintenance. New writes are refused by the
-- copy trigger; this holds the table itself to it. A table that already holds
-- such a time (adopted from a seed install) is not changed: the migration
-- stops, saying which rows to fix.
-- depends: 0009_rollup_running_totals

SET LOCAL search_path = pg_catalog, pg_temp;

DO $$
DECLARE
    v_rows text := (SELECT string_agg(format('%L (%s)', service_name, last_heartbeat), ', ')
                    FROM public.system_status WHERE NOT isfinite(last_heartbeat));
BEGIN
    IF v_rows IS NOT NULL THEN
        RAISE EXCEPTION 'public.system_status holds times that are not finite: %', v_rows
            USING ERRCODE = 'PS004',
                  HINT = 'Set them first, e.g. UPDATE system_status SET last_heartbeat = now() '
                         'WHERE NOT isfinite(last_heartbeat); then migrate again.';
    END IF;
END;
$$;

ALTER TABLE public.system_status
    ADD CONSTRAINT system_status_last_heartbeat_finite CHECK (isfinite(last_heartbeat));
