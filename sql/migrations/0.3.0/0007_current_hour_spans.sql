-- The current hour's rollup says when, as the hours' do (0.3.0): incidents read
-- its down and silent spans, and the answers' raw reading after it starts from
-- the row it keeps (the one in force where it stops), not from a search of history.
-- depends: 0006_rollup_spans
--
-- The current hour so far is rolled up again at the next refresh (a minute),
-- with its spans: until then answers read it from raw history, as before 0006.
-- New columns with constant defaults on a table of one row a service: safe on
-- a live database.

SET LOCAL search_path = pg_catalog, pg_temp;

ALTER TABLE pystatus.rollup_current
    ADD COLUMN down tstzmultirange NOT NULL DEFAULT '{}',
    ADD COLUMN silent tstzmultirange NOT NULL DEFAULT '{}',
    ADD COLUMN last_at timestamptz,
    ADD COLUMN last_status varchar(16);
COMMENT ON TABLE pystatus.rollup_current IS
    'Per service, for [rollup_state.current_from, rollup_state.current_until), the part of the '
    'current hour already rolled up: microseconds up, down and in maintenance; when it was down '
    '(silent: the part of down that was silence past the deadline); and the service''s newest '
    'history row before current_until (last_at, last_status; NULL until found), the row in force '
    'there, kept from hour to hour. Extended every minute by pystatus.refresh_rollups(); its sums '
    'start afresh when the hour is rolled up.';

DELETE FROM pystatus.rollup_current;
UPDATE pystatus.rollup_state SET current_from = rolled_until, current_until = rolled_until;
