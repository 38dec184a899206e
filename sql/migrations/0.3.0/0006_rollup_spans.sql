-- Rollups that say when, not only how long (0.3.0): the spans of each hour
-- not wholly up, and the current hour rolled up every minute, so that
-- incidents and the edges of a window are read from rollups, not raw history.
-- depends: 0004_ping_tokens
--
-- Hours rolled up before this have no spans: answers read raw history for them
-- as before (rollup_state.spans_from). Only new, empty tables and two columns
-- with a value: safe on a live database.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE TABLE pystatus.rollup_spans (
    service_name varchar(64) NOT NULL,
    bucket timestamptz NOT NULL,
    down tstzmultirange NOT NULL,
    silent tstzmultirange NOT NULL,
    maintenance tstzmultirange NOT NULL,
    no_data tstzmultirange NOT NULL,
    PRIMARY KEY (service_name, bucket)
);
CREATE INDEX rollup_spans_bucket ON pystatus.rollup_spans (bucket);
COMMENT ON TABLE pystatus.rollup_spans IS
    'Per service and UTC hour not wholly up: when it was down (silent: the part of down that was '
    'silence past the deadline), in maintenance, and without data (no heartbeat yet, starting, '
    'stopping); the rest of the hour was up. Kept with rollup_hourly, from the hour '
    'rollup_state.spans_from on.';

CREATE TABLE pystatus.rollup_current (
    service_name varchar(64) PRIMARY KEY,
    up_us bigint NOT NULL,
    down_us bigint NOT NULL,
    maintenance_us bigint NOT NULL
);
COMMENT ON TABLE pystatus.rollup_current IS
    'Per service: microseconds up, down and in maintenance in [rollup_state.current_from, '
    'rollup_state.current_until), the part of the current hour already rolled up. Extended every '
    'minute by pystatus.refresh_rollups(), started afresh when the hour is rolled up.';

ALTER TABLE pystatus.rollup_state
    ADD COLUMN spans_from timestamptz,
    ADD COLUMN current_from timestamptz,
    ADD COLUMN current_until timestamptz;
-- Spans from the next hour rolled up on, unless nothing has been rolled up yet.
UPDATE pystatus.rollup_state
SET spans_from = CASE WHEN EXISTS (SELECT FROM pystatus.rollup_hourly) THEN rolled_until ELSE '-infinity' END,
    current_from = rolled_until,
    current_until = rolled_until;
ALTER TABLE pystatus.rollup_state
    ALTER COLUMN spans_from SET NOT NULL,
    ALTER COLUMN current_from SET NOT NULL,
    ALTER COLUMN current_until SET NOT NULL;
COMMENT ON TABLE pystatus.rollup_state IS
    'rolled_until: rollups hold every hour before it (an hour is rolled up 5 minutes after it '
    'ends); retention: how long rollups are kept (default 400 days, longer than raw history); '
    'spans_from: the first hour with rollup_spans (-infinity when every rollup has them; on an '
    'installation upgraded to 0.3.0, the hours rolled up before have none); current_from, '
    'current_until: what rollup_current holds (used while current_from = rolled_until).';

-- Replaced by _rollup_coverage() (which part of a window rollups hold, now in
-- five parts) and by _roll_up()'s own query (which writes the spans too).
DROP FUNCTION IF EXISTS pystatus._rolled_hours(text, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS pystatus._rollup_buckets(text, timestamptz, timestamptz, interval);
