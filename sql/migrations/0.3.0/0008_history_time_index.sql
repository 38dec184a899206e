-- History indexed by time as well, with a block-range (BRIN) index: what the
-- fleet's answers read after the current hour's rollup (the last minutes of
-- every service) is one range of the newest partition's pages, read at once,
-- rather than each service's whole current hour through the service-hour index.
-- On the minute (_history_minute()), which only those reads name: on the bare
-- column the planner also combined it with the service-hour index in one
-- service's reads, and a BRIN scan reads every range's summary.
-- A range summary a few dozen bytes for every 32 pages: the index is a few
-- hundred kilobytes for a month of 1,000 services.
-- depends: 0005_compact_history
--
-- Safe on a live database: built here only on partitions without rows;
-- `pystatus migrate` builds it on the others after this transaction with
-- CREATE INDEX CONCURRENTLY, as for 0005 (pystatus/migrations.py,
-- finish_history_index()). Until then, answers read as before.

SET LOCAL search_path = pg_catalog, pg_temp;

-- finish_history_index() reads every index it builds from one list now.
DROP FUNCTION IF EXISTS pystatus._history_index_pending();

CREATE INDEX system_status_history_time
    ON ONLY public.system_status_history USING brin (pystatus._history_minute(heartbeat_timestamp))
    WITH (pages_per_range = 32, autosummarize = on);
COMMENT ON INDEX public.system_status_history_time IS
    'Rows by UTC minute (_history_minute()), per range of 32 pages (BRIN): the fleet''s newest rows, '
    'read at once. Summarized '
    'as each range fills (autosummarize), rows being written in time order.';

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
        EXECUTE format('CREATE INDEX %I ON %I.%I USING brin (pystatus._history_minute(heartbeat_timestamp)) '
                       'WITH (pages_per_range = 32, autosummarize = on)',
                       left(v_partition.table_name, 50) || '_time',
                       v_partition.schema_name, v_partition.table_name);
        EXECUTE format('ALTER INDEX public.system_status_history_time ATTACH PARTITION %I.%I',
                       v_partition.schema_name, left(v_partition.table_name, 50) || '_time');
    END LOOP;
END;
$$;
