-- Undo 0007_current_hour_spans: the current hour's rollup keeps its times only.

SET LOCAL search_path = pg_catalog, pg_temp;

ALTER TABLE pystatus.rollup_current
    DROP COLUMN down, DROP COLUMN silent, DROP COLUMN last_at, DROP COLUMN last_status;
COMMENT ON TABLE pystatus.rollup_current IS
    'Per service: microseconds up, down and in maintenance in [rollup_state.current_from, '
    'rollup_state.current_until), the part of the current hour already rolled up. Extended every '
    'minute by pystatus.refresh_rollups(), started afresh when the hour is rolled up.';
