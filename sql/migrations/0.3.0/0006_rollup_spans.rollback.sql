-- Undo 0006_rollup_spans: the hours' spans and the current hour's rollup go;
-- answers read raw history for them again.

SET LOCAL search_path = pg_catalog, pg_temp;

-- What only this version defines; the version rolled back to applies its own
-- definitions of the rest (_rolled_hours and _rollup_buckets among them).
DROP FUNCTION IF EXISTS pystatus._rollup_coverage(text, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS pystatus._rollup_pieces(text, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS pystatus._roll_up_current(text, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS pystatus._multirange_us(tstzmultirange);
DROP FUNCTION IF EXISTS pystatus._incidents(text, timestamptz, timestamptz);

DROP TABLE pystatus.rollup_spans;
DROP TABLE pystatus.rollup_current;
ALTER TABLE pystatus.rollup_state DROP COLUMN spans_from, DROP COLUMN current_from, DROP COLUMN current_until;
COMMENT ON TABLE pystatus.rollup_state IS
    'rolled_until: rollups hold every hour before it (an hour is rolled up 5 minutes after it '
    'ends); retention: how long rollups are kept (default 400 days, longer than raw history).';
