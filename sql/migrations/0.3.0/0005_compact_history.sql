-- Compact history (0.3.0): a history row without a row identity or a copy of
-- its time, indexed by service and hour (deduplicated): 133 bytes a row with
-- its index before, about 68 after.
-- depends: 0002_finite_times
--
-- Safe on a live database: dropping a column and a default only changes the
-- catalog, and the new index is built here only on partitions without rows.
-- `pystatus migrate` builds it on the others after this transaction, with
-- CREATE INDEX CONCURRENTLY (heartbeats go on meanwhile), then drops the old
-- index (pystatus/migrations.py, finish_history_index()).

SET LOCAL search_path = pg_catalog, pg_temp;

-- The copy trigger runs once per statement now (30_write.sql creates it): the
-- row trigger and the function that recorded one event per row go.
DROP TRIGGER IF EXISTS system_status_copy_to_history ON public.system_status;
DROP FUNCTION IF EXISTS pystatus._record_status_event(text, text, text, timestamptz, boolean);

ALTER TABLE public.system_status_history DROP COLUMN id;
ALTER TABLE public.system_status_history
    ALTER COLUMN created_at DROP DEFAULT,
    ALTER COLUMN created_at DROP NOT NULL;
COMMENT ON COLUMN public.system_status_history.created_at IS
    'When the row was written, where that differs from heartbeat_timestamp: backfilled records and '
    'the sweeper''s stale rows. NULL when the row was written at heartbeat_timestamp.';

CREATE INDEX system_status_history_service_hour
    ON ONLY public.system_status_history (service_name, pystatus._history_hour(heartbeat_timestamp));
COMMENT ON INDEX public.system_status_history_service_hour IS
    'Each service''s rows by UTC hour: queries bound their scans with pystatus._history_hour().';

DO $$
DECLARE
    v_partition record;
    v_empty boolean;
BEGIN
    FOR v_partition IN
        SELECT n.nspname AS schema_name, c.relname AS table_name
        FROM pg_inherits AS i
        JOIN pg_class AS c ON c.oid = i.inhrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE i.inhparent = 'public.system_status_history'::regclass
    LOOP
        EXECUTE format('SELECT NOT EXISTS (SELECT FROM %I.%I)', v_partition.schema_name, v_partition.table_name)
            INTO v_empty;
        CONTINUE WHEN NOT v_empty;
        EXECUTE format('CREATE INDEX %I ON %I.%I (service_name, pystatus._history_hour(heartbeat_timestamp))',
                       left(v_partition.table_name, 50) || '_service_hour',
                       v_partition.schema_name, v_partition.table_name);
        EXECUTE format('ALTER INDEX public.system_status_history_service_hour ATTACH PARTITION %I.%I',
                       v_partition.schema_name, left(v_partition.table_name, 50) || '_service_hour');
    END LOOP;
    -- Every partition had no rows (a new install): the new index is complete.
    IF (SELECT x.indisvalid FROM pg_index AS x
        WHERE x.indexrelid = 'public.system_status_history_service_hour'::regclass) THEN
        DROP INDEX public.system_status_history_service_time;
    END IF;
END;
$$;
