-- Maintenance windows and snoozes: planned quiet times, one-off or recurring
-- in a time zone's wall clock. Inside a maintenance window a service's down
-- time counts as maintenance in every answer (segments(), and so uptime,
-- incidents, rollups, live_status) and its alerts are muted; a snooze mutes
-- alerts only. The table is in 20_tables.sql.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION pystatus._is_time_zone(time_zone text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM timestamp '2000-01-01' AT TIME ZONE time_zone;
    RETURN true;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN false;
END;
$$;
COMMENT ON FUNCTION pystatus._is_time_zone(text) IS
    'Whether PostgreSQL knows this time zone (a name such as Europe/Berlin, or an abbreviation).';

-- A window is planned in its zone's wall clock: times written without an offset
-- are read there, for the rest of the transaction that plans it. A zone the
-- TimeZone setting does not take (an abbreviation such as CEST, which AT TIME
-- ZONE would take) is refused here: read in the session's zone instead, the
-- window would be stored shifted.
CREATE OR REPLACE FUNCTION pystatus._read_times_in(time_zone text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_previous text := current_setting('TimeZone');
BEGIN
    IF time_zone IS NULL THEN
        RAISE EXCEPTION 'invalid time zone NULL' USING ERRCODE = 'PS005';
    END IF;
    PERFORM set_config('TimeZone', time_zone, true);
    RETURN v_previous;
EXCEPTION WHEN invalid_parameter_value THEN
    RAISE EXCEPTION 'invalid time zone %: name a zone, such as Europe/Berlin or UTC', quote_literal(time_zone)
        USING ERRCODE = 'PS005';
END;
$$;
COMMENT ON FUNCTION pystatus._read_times_in(text) IS
    'Reads times without an offset in time_zone until the transaction ends, and returns the zone '
    'they were read in before (to set back); PS005 for a zone TimeZone does not take.';

-- Windows and alert rules name services by pattern, as allowances do: a
-- service name where * stands for any characters.
CREATE OR REPLACE FUNCTION pystatus._check_service_pattern(service_pattern text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF service_pattern IS NULL OR service_pattern = ''
       OR NOT pystatus.is_valid_service_name(replace(service_pattern, '*', 'x')) THEN
        RAISE EXCEPTION 'invalid service pattern %: a service name, where * stands for any characters',
            quote_nullable(service_pattern) USING ERRCODE = 'PS001';
    END IF;
END;
$$;
COMMENT ON FUNCTION pystatus._check_service_pattern(text) IS
    'Raises PS001 unless the pattern is a service name in which * stands for any characters.';

CREATE OR REPLACE FUNCTION pystatus.maintenance_occurrences(since timestamptz, until timestamptz)
RETURNS TABLE (window_id bigint, service_pattern text, like_pattern text, kind text,
               starts timestamptz, ends timestamptz, reason text)
LANGUAGE sql STABLE
-- Runs as its owner: live_status calls it with a reader's rights.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT w.id, w.service_pattern, w.like_pattern, w.kind, o.starts, o.ends, w.reason
    FROM pystatus.maintenance_windows AS w
    CROSS JOIN LATERAL (
        SELECT w.starts, w.ends WHERE w.every IS NULL
        UNION ALL
        -- Repeats start at the same wall-clock time in the window's zone and last
        -- as long as the first (a start that falls in a daylight saving gap moves
        -- forward with the clock). Every is a whole number of hours, days or
        -- weeks, so the n-th repeat is within an hour of starts + n * every: one
        -- more on each side.
        SELECT r.starts, r.starts + make_interval(secs => extract(epoch FROM w.ends - w.starts))
        FROM generate_series(
            greatest(0, floor(extract(epoch FROM maintenance_occurrences.since - w.ends)
                              / extract(epoch FROM w.every))::bigint - 1),
            ceil(extract(epoch FROM maintenance_occurrences.until - w.starts)
                 / extract(epoch FROM w.every))::bigint + 1) AS n
        CROSS JOIN LATERAL (
            SELECT ((w.starts AT TIME ZONE w.time_zone) + n * w.every) AT TIME ZONE w.time_zone AS starts
        ) AS r
        WHERE w.every IS NOT NULL
    ) AS o
    WHERE o.starts < maintenance_occurrences.until AND o.ends > maintenance_occurrences.since
      AND (w.repeat_until IS NULL OR o.starts < w.repeat_until);
$$;
COMMENT ON FUNCTION pystatus.maintenance_occurrences(timestamptz, timestamptz) IS
    'Every occurrence of the maintenance windows and snoozes that overlaps [since, until), '
    'recurring windows expanded in their time zone.';

CREATE OR REPLACE FUNCTION pystatus._maintenance_ranges(service_name text, since timestamptz, until timestamptz)
RETURNS tstzmultirange
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT range_agg(tstzrange(o.starts, o.ends))
    FROM pystatus.maintenance_occurrences(_maintenance_ranges.since, _maintenance_ranges.until) AS o
    WHERE o.kind = 'maintenance' AND _maintenance_ranges.service_name LIKE o.like_pattern;
$$;
COMMENT ON FUNCTION pystatus._maintenance_ranges(text, timestamptz, timestamptz) IS
    'The times in [since, until) that a maintenance window covers for this service (NULL: none).';

-- Where rollups may be recomputed from: the hour of a service's oldest raw
-- row, or the hour after it when an older hour was rolled up (that hour's
-- start is carried in a status whose row has expired). Before it, the rollups
-- are all that is left, and are kept as they are.
CREATE OR REPLACE FUNCTION pystatus._rollups_recomputable_from(service_name text)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN EXISTS (SELECT FROM pystatus.rollup_hourly AS r
                             WHERE r.service_name = _rollups_recomputable_from.service_name AND r.bucket < o.hour)
                THEN o.hour + interval '1 hour' ELSE o.hour END
    FROM (SELECT min(pystatus._history_hour(h.heartbeat_timestamp)) AS hour
          FROM public.system_status_history AS h
          WHERE h.service_name = _rollups_recomputable_from.service_name) AS o
    WHERE o.hour IS NOT NULL;
$$;
COMMENT ON FUNCTION pystatus._rollups_recomputable_from(text) IS
    'The first hour whose rollups can be recomputed from the service''s raw history (NULL: it has none).';

-- A window changes how the past reads: the rollups of the hours it covers are
-- recomputed, for the services it matches, where raw history is still kept.
CREATE OR REPLACE FUNCTION pystatus._windows_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO pystatus.rollup_dirty (service_name, since)
    SELECT s.service_name, greatest(w.starts, f.since)
    FROM (SELECT OLD.starts, OLD.like_pattern, OLD.kind WHERE TG_OP <> 'INSERT'
          UNION ALL
          SELECT NEW.starts, NEW.like_pattern, NEW.kind WHERE TG_OP <> 'DELETE') AS w(starts, like_pattern, kind)
    JOIN public.system_status AS s ON s.service_name LIKE w.like_pattern
    CROSS JOIN LATERAL (SELECT pystatus._rollups_recomputable_from(s.service_name)) AS f(since)
    WHERE w.kind = 'maintenance' AND w.starts < now() AND f.since IS NOT NULL;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION pystatus._windows_changed() IS
    'Trigger function: marks the rollups of the services a changed maintenance window matches for '
    'recomputation from the window''s start (never before their oldest raw history row).';

CREATE OR REPLACE TRIGGER maintenance_windows_changed
    AFTER INSERT OR UPDATE OR DELETE ON pystatus.maintenance_windows
    FOR EACH ROW EXECUTE FUNCTION pystatus._windows_changed();
COMMENT ON TRIGGER maintenance_windows_changed ON pystatus.maintenance_windows IS
    'Past hours read differently once a window covers them: their rollups are recomputed.';

CREATE OR REPLACE FUNCTION pystatus.add_maintenance(
    service_pattern text,
    starts timestamptz,
    ends timestamptz,
    every interval DEFAULT NULL,
    time_zone text DEFAULT 'UTC',
    repeat_until timestamptz DEFAULT NULL,
    reason text DEFAULT NULL,
    kind text DEFAULT 'maintenance')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM pystatus._check_service_pattern(add_maintenance.service_pattern);
    IF add_maintenance.starts IS NULL OR add_maintenance.ends IS NULL
       OR NOT isfinite(add_maintenance.starts) OR NOT isfinite(add_maintenance.ends)
       OR add_maintenance.ends <= add_maintenance.starts THEN
        RAISE EXCEPTION 'invalid window % to %: both finite, and the end after the start',
            add_maintenance.starts, add_maintenance.ends USING ERRCODE = 'PS005';
    END IF;
    IF add_maintenance.every IS NOT NULL AND (
           add_maintenance.every < interval '1 hour'
           OR extract(month FROM add_maintenance.every) <> 0 OR extract(year FROM add_maintenance.every) <> 0
           OR add_maintenance.ends - add_maintenance.starts > add_maintenance.every) THEN
        RAISE EXCEPTION 'invalid repeat every %: hours, days or weeks, at least 1 hour and at least the window''s '
                        'length (%)', add_maintenance.every, add_maintenance.ends - add_maintenance.starts
            USING ERRCODE = 'PS005';
    END IF;
    IF add_maintenance.repeat_until IS NOT NULL AND add_maintenance.every IS NULL THEN
        RAISE EXCEPTION 'invalid repeat_until %: only a recurring window (every) has one', add_maintenance.repeat_until
            USING ERRCODE = 'PS005';
    END IF;
    IF add_maintenance.time_zone IS NULL OR NOT pystatus._is_time_zone(add_maintenance.time_zone) THEN
        RAISE EXCEPTION 'invalid time zone %', quote_nullable(add_maintenance.time_zone) USING ERRCODE = 'PS005';
    END IF;
    IF add_maintenance.kind IS NULL OR add_maintenance.kind NOT IN ('maintenance', 'snooze') THEN
        RAISE EXCEPTION 'invalid kind %: maintenance or snooze', quote_nullable(add_maintenance.kind)
            USING ERRCODE = 'PS005';
    END IF;
    IF octet_length(add_maintenance.reason) > 1024 THEN
        RAISE EXCEPTION 'invalid reason: longer than 1024 bytes' USING ERRCODE = 'PS005';
    END IF;
    INSERT INTO pystatus.maintenance_windows
        (service_pattern, kind, starts, ends, every, repeat_until, time_zone, reason)
    VALUES (add_maintenance.service_pattern, add_maintenance.kind, add_maintenance.starts, add_maintenance.ends,
            add_maintenance.every, add_maintenance.repeat_until, add_maintenance.time_zone, add_maintenance.reason)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION pystatus.add_maintenance(text, timestamptz, timestamptz, interval, text, timestamptz, text, text) IS
    'Plans a maintenance window (or, kind snooze, a time when alerts are muted) for the services '
    'matching service_pattern (* for any characters), from starts to ends, repeating every that '
    'long (hours, days or weeks) in time_zone''s wall clock when every is given. Returns its id; '
    'PS001/PS005 on bad input.';

CREATE OR REPLACE FUNCTION pystatus.snooze(service_pattern text, duration interval, reason text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF snooze.duration IS NULL OR snooze.duration <= interval '0' OR snooze.duration > interval '366 days' THEN
        RAISE EXCEPTION 'invalid duration %: more than 0 and at most 366 days', snooze.duration
            USING ERRCODE = 'PS005';
    END IF;
    RETURN pystatus.add_maintenance(snooze.service_pattern, now(), now() + snooze.duration,
                                    reason => snooze.reason, kind => 'snooze');
END;
$$;
COMMENT ON FUNCTION pystatus.snooze(text, interval, text) IS
    'Mutes the alerts of the services matching service_pattern for duration, from now; the answers '
    'are unchanged (a snoozed service that is down is still down). Returns the snooze''s id.';

CREATE OR REPLACE FUNCTION pystatus.remove_maintenance(window_id bigint)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH gone AS (DELETE FROM pystatus.maintenance_windows AS w WHERE w.id = remove_maintenance.window_id
                  RETURNING 1)
    SELECT count(*) > 0 FROM gone;
END;
COMMENT ON FUNCTION pystatus.remove_maintenance(bigint) IS
    'Removes a maintenance window or snooze (all its repeats); false if there was none with that id. '
    'Past hours it covered count as they were reported again.';
