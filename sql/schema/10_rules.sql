-- Rules: what a service name, a status and a heartbeat may be, and how a status
-- counts. The tables' constraints (20_tables.sql), the fast test on the
-- heartbeat path and the API's error messages share these definitions, so
-- they come before the tables.
--
-- The naming rule has two forms, one regular expression and one that says
-- which rule is broken; a property test keeps them in agreement.

SET LOCAL search_path = pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- Service names, statuses, heartbeats
------------------------------------------------------------------------------

-- The characters the naming rule names, spelled out rather than left to the
-- database's locale (whose [[:space:]] differs between C.UTF-8 and en_US).
-- Invisible characters (soft hyphen, zero-width spaces and joiners, direction
-- marks, overrides and isolates, invisible operators, fillers, byte-order
-- mark) would let one name pass for another on a dashboard.
--
-- They live in a PL/pgSQL function on purpose: the table's constraint inlines
-- is_valid_service_name() into every statement that writes system_status, and
-- a long pattern literal in its body is read back from the catalog each time
-- (a heartbeat cost much more that way); this function is called
-- once per statement instead, when the planner folds constants, and keeps its
-- compiled body for the session.
-- search_path: not pinned, because the planner calls it for every statement that
-- writes system_status, where a pin would cost a configuration save and
-- restore; it calls nothing.
CREATE OR REPLACE FUNCTION pystatus._name_characters(kind text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN CASE
        WHEN kind OPERATOR(pg_catalog.=) 'white space' THEN '\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000'
        WHEN kind OPERATOR(pg_catalog.=) 'control' THEN '\u0001-\u001f\u007f-\u009f'
        WHEN kind OPERATOR(pg_catalog.=) 'invisible' THEN '\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0'
    END;
END;
$$;
COMMENT ON FUNCTION pystatus._name_characters(text) IS
    'The characters of one kind (white space, control, invisible) that the naming rule names, as '
    'the inside of a regular expression''s bracket.';

-- search_path: not pinned, because the planner calls it for every statement that
-- writes system_status (see above); it names its functions with their schema.
CREATE OR REPLACE FUNCTION pystatus._service_name_pattern()
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    -- 1 to 64 characters, none a control or invisible character, the first and
    -- last not white space (so not blank).
    RETURN pg_catalog.format('^[^%1$s%2$s%3$s]([^%1$s%2$s]{0,62}[^%1$s%2$s%3$s])?$',
                  pystatus._name_characters('control'), pystatus._name_characters('invisible'),
                  pystatus._name_characters('white space'));
END;
$$;
COMMENT ON FUNCTION pystatus._service_name_pattern() IS
    'The naming rule as one regular expression, for is_valid_service_name().';

-- One cleaning rule for every free text a writer sets (a service's current
-- task, an alert receiver's error): such text is printed by terminals and
-- mailed, and an escape sequence in it is an instruction to the terminal.
-- Control and invisible characters become spaces, runs of white space one
-- space, and none is left at either end. pystatus.names.clean_text() is the
-- Python twin, kept in agreement by a test.
CREATE OR REPLACE FUNCTION pystatus.clean_text(text text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN btrim(regexp_replace(regexp_replace(text,
                 '[' || pystatus._name_characters('control') || pystatus._name_characters('invisible') || ']',
                 ' ', 'g'),
             '[' || pystatus._name_characters('white space') || ']+', ' ', 'g'), ' ');
COMMENT ON FUNCTION pystatus.clean_text(text) IS
    'Free text on one printable line: control and invisible characters become spaces, runs of '
    'white space one space, none at either end. Applied to every text a writer sets.';

-- What clean_text() would change, as one regular expression: the copy trigger
-- tests every text it copies with it, and cleans only those it matches. A
-- constant PL/pgSQL function, folded once into the trigger's kept plans. A
-- test keeps the two in agreement.
CREATE OR REPLACE FUNCTION pystatus._unclean_text_pattern()
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A control, invisible or white-space character other than a space; two
    -- spaces; a space at either end.
    RETURN '[\u0001-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]|  |^ | $';
END;
$$;
COMMENT ON FUNCTION pystatus._unclean_text_pattern() IS
    'Matches exactly the texts pystatus.clean_text() changes.';

CREATE OR REPLACE FUNCTION pystatus.service_name_problem(service_name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN service_name IS NULL THEN 'must not be null'
    WHEN service_name = '' THEN 'must not be empty'
    WHEN char_length(service_name) > 64 THEN
        'must be at most 64 characters (it has ' || char_length(service_name) || ')'
    WHEN service_name !~ ('[^' || pystatus._name_characters('white space') || ']') THEN 'must not be blank'
    WHEN service_name ~ ('[' || pystatus._name_characters('control') || ']') THEN
        'must not contain control characters'
    WHEN service_name ~ ('[' || pystatus._name_characters('invisible') || ']') THEN
        'must not contain invisible or direction-changing characters (it has U+'
        || lpad(upper(to_hex(ascii(substring(service_name
               FROM '[' || pystatus._name_characters('invisible') || ']')))), 4, '0') || ')'
    WHEN service_name ~ ('^[' || pystatus._name_characters('white space') || ']|['
                         || pystatus._name_characters('white space') || ']$') THEN
        'must not start or end with white space'
END;
COMMENT ON FUNCTION pystatus.service_name_problem(text) IS
    'Why a service name breaks the naming rules (1-64 characters, not blank, no control or invisible '
    'characters, no white space at either end), or NULL when it is valid.';

CREATE OR REPLACE FUNCTION pystatus.is_valid_service_name(service_name text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
-- service_name_problem() says which rule a name breaks; a test checks that the
-- two agree.
RETURN service_name ~ pystatus._service_name_pattern();
COMMENT ON FUNCTION pystatus.is_valid_service_name(text) IS
    'Whether a service name keeps the naming rules; the fast test behind the table constraint '
    'and the heartbeat functions.';

-- The vocabulary lives in a PL/pgSQL function for the reason the name's
-- characters do: system_status's constraint inlines is_status() into every
-- statement that writes it, and the body it inlines is read back from the
-- catalog and parsed each time. With the list spelled out in that body (a
-- query tree of seven constants, stored compressed), preparing the constraint
-- cost a heartbeat a sixth of all it costs; a call of this function, folded
-- once per statement, costs next to nothing.
-- search_path: not pinned, because the planner calls it for every statement that
-- writes system_status (see _name_characters()); it calls nothing.
CREATE OR REPLACE FUNCTION pystatus._statuses()
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN ARRAY['ok', 'degraded', 'down', 'starting', 'stopping', 'maintenance', 'stale'];
END;
$$;
COMMENT ON FUNCTION pystatus._statuses() IS
    'The status vocabulary as an array, for is_status().';

CREATE OR REPLACE FUNCTION pystatus.is_status(status text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN status = ANY (pystatus._statuses());
COMMENT ON FUNCTION pystatus.is_status(text) IS
    'The status vocabulary: what services report (ok, degraded, down, starting, stopping, '
    'maintenance) plus stale, which only pystatus writes, when a service falls silent.';

CREATE OR REPLACE FUNCTION pystatus._is_valid_heartbeat(
    service_name text, status text, current_task text, latency_ms double precision)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(pystatus.is_valid_service_name(service_name)
                AND pystatus.is_status(status) AND status <> 'stale'
                AND coalesce(octet_length(current_task) <= 4096, true)
                AND coalesce(latency_ms >= 0 AND latency_ms < 'Infinity', true), false);
COMMENT ON FUNCTION pystatus._is_valid_heartbeat(text, text, text, double precision) IS
    'Whether a heartbeat keeps every rule, in one expression the heartbeat functions evaluate '
    'inline; only when it does not do they call _check_heartbeat() for the precise error.';

CREATE OR REPLACE FUNCTION pystatus._check_heartbeat(
    service_name text, status text, current_task text, latency_ms double precision)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_problem text := pystatus.service_name_problem(service_name);
BEGIN
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'invalid service name %: %',
            quote_nullable(left(service_name, 80)) || CASE WHEN char_length(service_name) > 80 THEN '...' ELSE '' END,
            v_problem
            USING ERRCODE = 'PS001',
                  HINT = 'A service name has 1 to 64 characters, is not blank, has no control or invisible '
                         'characters and no white space at either end.';
    END IF;
    IF status = 'stale' THEN
        RAISE EXCEPTION 'invalid status ''stale'': it is reserved for pystatus, which writes it when a service falls silent'
            USING ERRCODE = 'PS002',
                  HINT = 'Services report ok, degraded, down, starting, stopping or maintenance.';
    END IF;
    IF status IS NULL OR NOT pystatus.is_status(status) THEN
        RAISE EXCEPTION 'invalid status %: must be one of ok, degraded, down, starting, stopping, maintenance',
            quote_nullable(left(status, 80))
            USING ERRCODE = 'PS002',
                  HINT = 'Statuses are lower case.';
    END IF;
    IF octet_length(current_task) > 4096 THEN
        RAISE EXCEPTION 'invalid current_task: it is % bytes, the limit is 4096 bytes', octet_length(current_task)
            USING ERRCODE = 'PS003';
    END IF;
    IF latency_ms < 0 OR latency_ms >= 'Infinity' THEN  -- NaN sorts above Infinity
        RAISE EXCEPTION 'invalid latency_ms %: must be a finite number, 0 or more', latency_ms
            USING ERRCODE = 'PS006';
    END IF;
END;
$$;
COMMENT ON FUNCTION pystatus._check_heartbeat(text, text, text, double precision) IS
    'Raises a clear error (SQLSTATE PS001 name, PS002 status, PS003 task, PS006 latency) for a heartbeat '
    'that breaks the rules; the heartbeat functions call it before writing anything.';

------------------------------------------------------------------------------
-- The status model (docs/answers.md, "How pystatus reads history"):
--   * a history row's status holds from its time until the next row;
--   * a service silent for longer than expected_interval + grace is stale
--     from that deadline on, unless its last status was stopping or
--     maintenance (planned, so silence is expected) or stale already;
--   * categories: up = ok, degraded; down = down, stale;
--     maintenance = maintenance; no data = starting, stopping, and any time
--     before a service's first heartbeat or after now.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus.goes_stale(status text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN status NOT IN ('stale', 'stopping', 'maintenance');
COMMENT ON FUNCTION pystatus.goes_stale(text) IS
    'Whether silence past the deadline turns this status stale: not for stopping and maintenance '
    '(the service said it would be quiet) nor for stale itself.';

CREATE OR REPLACE FUNCTION pystatus.status_category(status text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN status IN ('ok', 'degraded') THEN 'up'
    WHEN status IN ('down', 'stale') THEN 'down'
    WHEN status = 'maintenance' THEN 'maintenance'
    ELSE 'no data'  -- starting, stopping: planned transitions, neither up nor down
END;
COMMENT ON FUNCTION pystatus.status_category(text) IS
    'How a status counts for uptime: up (ok, degraded), down (down, stale), maintenance, '
    'or no data (starting, stopping).';

CREATE OR REPLACE FUNCTION pystatus.status_severity(status text)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN array_position(
    ARRAY['down', 'stale', 'degraded', 'maintenance', 'starting', 'stopping', 'ok'], status) - 1;
COMMENT ON FUNCTION pystatus.status_severity(text) IS
    'How bad a status is, 0 the worst: the order in which lists and summaries show statuses '
    '(down, stale, degraded, maintenance, starting, stopping, ok); NULL for no status.';

-- The expectation of a service nobody has set one for. Constant SQL functions,
-- inlined and folded where they are used: the copy trigger pays nothing for them.
CREATE OR REPLACE FUNCTION pystatus.default_expected_interval()
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN interval '60 seconds';
COMMENT ON FUNCTION pystatus.default_expected_interval() IS
    'The heartbeat interval expected of a service without expectations of its own.';

CREATE OR REPLACE FUNCTION pystatus.default_grace()
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN interval '60 seconds';
COMMENT ON FUNCTION pystatus.default_grace() IS
    'The lateness forgiven a service without expectations of its own, and set_expectations()''s '
    'default grace.';

------------------------------------------------------------------------------
-- Time: durations and the rollups' buckets. Constant SQL functions, which
-- PostgreSQL inlines and folds where they are used, so naming them costs nothing.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus._microseconds(duration interval)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (extract(epoch FROM duration) * 1000000)::bigint;
COMMENT ON FUNCTION pystatus._microseconds(interval) IS
    'A duration in whole microseconds: rollups add these exactly.';

CREATE OR REPLACE FUNCTION pystatus._bucket_origin()
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN timestamptz '2000-01-01 00:00:00+00';
COMMENT ON FUNCTION pystatus._bucket_origin() IS
    'Where the rollups'' hours and days start counting (date_bin''s origin): UTC midnight, so '
    'hourly and daily buckets are UTC hours and days.';

-- History's index (20_tables.sql) lists each service's rows by this hour,
-- not by their exact time: one key for all of a service's rows in an hour,
-- which PostgreSQL deduplicates into a posting list of about 6 bytes a row. A
-- query on one service's rows in [since, until) names the hours too, as
--   _history_hour(h.heartbeat_timestamp) BETWEEN _history_hour(since) AND _history_hour(until)
-- beside its test on heartbeat_timestamp, so that the index bounds the scan.
CREATE OR REPLACE FUNCTION pystatus._history_hour(at timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN date_bin('1 hour', at, pystatus._bucket_origin());
COMMENT ON FUNCTION pystatus._history_hour(timestamptz) IS
    'The UTC hour a history row is indexed under (system_status_history_service_hour).';

-- History's index by time (20_tables.sql, BRIN) is on this minute, not on
-- heartbeat_timestamp itself: only the fleet's reads by time name it. On the
-- bare column the planner also combined it with the service-hour index in one
-- service's reads (they test heartbeat_timestamp too), and a BRIN scan reads
-- the summary of every range of the partition, more as it fills, for every
-- service of a fleet.
CREATE OR REPLACE FUNCTION pystatus._history_minute(at timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN date_bin('1 minute', at, pystatus._bucket_origin());
COMMENT ON FUNCTION pystatus._history_minute(timestamptz) IS
    'The UTC minute a history row is indexed under by time (system_status_history_time).';

-- PL/pgSQL, not SQL: history's trigger for late rows tests it in its WHEN
-- clause, which is prepared for every statement that writes history; an SQL
-- function there is inlined, its body read back from the catalog and parsed,
-- each time, where a PL/pgSQL call, folded to a constant, costs next to
-- nothing.
-- search_path: not pinned, because the planner calls it for every statement that
-- writes history; it calls nothing.
CREATE OR REPLACE FUNCTION pystatus._rollup_delay()
RETURNS interval
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN interval '5 minutes';
END;
$$;
COMMENT ON FUNCTION pystatus._rollup_delay() IS
    'How long after an hour ends it is rolled up, so that its heartbeats have committed; a '
    'history row dated further back than this when written is late and marks its rollups dirty.';
