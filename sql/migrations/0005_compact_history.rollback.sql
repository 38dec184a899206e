-- Undo 0005_compact_history: created_at filled in and written by default
-- again, a row id from a sequence (NULL on the rows written meanwhile: an
-- identity column cannot be added to a table with partitions), and the index
-- on (service_name, heartbeat_timestamp DESC). Both columns stay nullable, so
-- that heartbeats go on until the older version's definitions are applied.
-- It rewrites history: on a large one, expect it to take a while and to hold
-- heartbeats.

SET LOCAL search_path = pg_catalog, pg_temp;

-- The old index is still there if `pystatus migrate` had not finished the new one.
DROP INDEX IF EXISTS public.system_status_history_service_time;
DROP INDEX public.system_status_history_service_hour;
CREATE INDEX system_status_history_service_time
    ON public.system_status_history (service_name, heartbeat_timestamp DESC);
UPDATE public.system_status_history SET created_at = heartbeat_timestamp WHERE created_at IS NULL;
ALTER TABLE public.system_status_history
    ALTER COLUMN created_at SET DEFAULT now(),
    ADD COLUMN id bigint;
CREATE SEQUENCE public.system_status_history_id_seq OWNED BY public.system_status_history.id;
ALTER TABLE public.system_status_history
    ALTER COLUMN id SET DEFAULT nextval('public.system_status_history_id_seq');
COMMENT ON COLUMN public.system_status_history.id IS
    'Row identity. Not a key: a partitioned table''s key must include the partition column, '
    'and (service_name, heartbeat_timestamp) serves every lookup.';
COMMENT ON COLUMN public.system_status_history.created_at IS
    'When the row was written; later than heartbeat_timestamp for backfilled records.';

DELETE FROM pystatus.definitions_applied;
