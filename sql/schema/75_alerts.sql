-- Alerts: every change of a service's effective status is an event, written
-- in the same transaction as the change (the outbox); rules say which
-- services alert which channels and when (anti-flap, reminders); messages are
-- delivered at least once by `pystatus alerts run` (pystatus/alerts.py), which
-- claims them here. The tables are in 20_tables.sql, maintenance windows and
-- snoozes in 45_windows.sql.

SET LOCAL search_path = pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- Events: the outbox, written by triggers on system_status
------------------------------------------------------------------------------

-- The channel `pystatus alerts run` listens on, for test messages. Status
-- writes do not notify: a NOTIFY in a service's transaction would make its
-- PREPARE TRANSACTION fail (two-phase commit) and serialize its commit on the
-- notification queue's lock; the worker polls every second instead.
CREATE OR REPLACE FUNCTION pystatus._alerts_channel()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'pystatus_alerts';
COMMENT ON FUNCTION pystatus._alerts_channel() IS
    'The LISTEN/NOTIFY channel that wakes alert workers when a status changes.';

-- Called by the copy trigger (30_write.sql), which runs as its owner, for a
-- write that changes a status: writers need no right on events. It inserts
-- one row and takes no lock a status write could wait for.
------------------------------------------------------------------------------
-- Channels and rules
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus._channel_options(kind text)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE kind
    WHEN 'webhook' THEN ARRAY['secret', 'timeout']
    WHEN 'email' THEN ARRAY['host', 'port', 'starttls', 'ssl', 'username', 'password', 'sender', 'timeout']
    WHEN 'apprise' THEN ARRAY[]::text[]  -- Apprise URLs take their own (?cto=, ?rto= for timeouts)
END;
COMMENT ON FUNCTION pystatus._channel_options(text) IS
    'The options each kind of channel takes.';

CREATE OR REPLACE FUNCTION pystatus.add_alert_channel(
    name text, kind text, target text, options jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_unknown text;
BEGIN
    IF add_alert_channel.name IS NULL OR add_alert_channel.name !~ '^[a-z0-9][a-z0-9_.-]{0,63}$' THEN
        RAISE EXCEPTION 'invalid channel name %: lower-case letters, digits, _ . - (at most 64)',
            quote_nullable(add_alert_channel.name) USING ERRCODE = 'PS005';
    END IF;
    IF add_alert_channel.kind IS NULL OR pystatus._channel_options(add_alert_channel.kind) IS NULL THEN
        RAISE EXCEPTION 'invalid channel kind %: webhook, email or apprise', quote_nullable(add_alert_channel.kind)
            USING ERRCODE = 'PS005';
    END IF;
    IF add_alert_channel.target IS NULL OR add_alert_channel.target = ''
       OR (add_alert_channel.kind = 'webhook' AND add_alert_channel.target !~ '^https?://[^/\s]+')
       OR (add_alert_channel.kind = 'email' AND add_alert_channel.target !~ '^[^@\s,]+@[^@\s,]+(\s*,\s*[^@\s,]+@[^@\s,]+)*$')
       OR (add_alert_channel.kind = 'apprise' AND add_alert_channel.target !~ '^[a-z0-9+]+://') THEN
        RAISE EXCEPTION 'invalid target for a % channel: %', add_alert_channel.kind, CASE add_alert_channel.kind
            WHEN 'webhook' THEN 'an http:// or https:// URL'
            WHEN 'email' THEN 'one or more addresses, separated by commas'
            ELSE 'an Apprise URL (slack://..., mailto://..., json://...)' END
            USING ERRCODE = 'PS005';
    END IF;
    IF add_alert_channel.options IS NULL OR jsonb_typeof(add_alert_channel.options) <> 'object' THEN
        RAISE EXCEPTION 'invalid options: a JSON object' USING ERRCODE = 'PS005';
    END IF;
    SELECT string_agg(k, ', ') INTO v_unknown
    FROM jsonb_object_keys(add_alert_channel.options) AS k
    WHERE k <> ALL (pystatus._channel_options(add_alert_channel.kind));
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'invalid options for a % channel: % (it takes %)', add_alert_channel.kind, v_unknown,
            coalesce(nullif(array_to_string(pystatus._channel_options(add_alert_channel.kind), ', '), ''), 'none')
            USING ERRCODE = 'PS005';
    END IF;
    IF add_alert_channel.options ? 'timeout'
       AND (jsonb_typeof(add_alert_channel.options -> 'timeout') <> 'number'
            OR (add_alert_channel.options ->> 'timeout')::numeric NOT BETWEEN 1 AND 120) THEN
        RAISE EXCEPTION 'invalid timeout %: seconds, from 1 to 120', add_alert_channel.options -> 'timeout'
            USING ERRCODE = 'PS005';
    END IF;
    INSERT INTO pystatus.alert_channels AS c (name, kind, target, options)
    VALUES (add_alert_channel.name, add_alert_channel.kind, add_alert_channel.target, add_alert_channel.options)
    ON CONFLICT ON CONSTRAINT alert_channels_pkey DO UPDATE
        SET kind = EXCLUDED.kind, target = EXCLUDED.target, options = EXCLUDED.options;
END;
$$;
COMMENT ON FUNCTION pystatus.add_alert_channel(text, text, text, jsonb) IS
    'Adds (or replaces) a channel: webhook (target: URL; options: secret, timeout), email (target: '
    'addresses; options: host, port, starttls, ssl, username, password, sender, timeout) or apprise '
    '(target: Apprise URLs, with their own timeout parameters; no options). PS005 on bad input.';

CREATE OR REPLACE FUNCTION pystatus.remove_alert_channel(name text)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH gone AS (DELETE FROM pystatus.alert_channels AS c WHERE c.name = remove_alert_channel.name RETURNING 1)
    SELECT count(*) > 0 FROM gone;
END;
COMMENT ON FUNCTION pystatus.remove_alert_channel(text) IS
    'Removes a channel, its rules and its messages; false if there was none.';

-- Secrets stay in the table: what lists show has them masked.
CREATE OR REPLACE FUNCTION pystatus._mask_secrets(kind text, target text, options jsonb, OUT target text, OUT options jsonb)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE _mask_secrets.kind
                WHEN 'email' THEN _mask_secrets.target
                -- Apprise URLs carry their tokens anywhere, the host part included.
                WHEN 'apprise' THEN regexp_replace(_mask_secrets.target, '(^|\s)([a-z0-9+]+://)\S*', '\1\2...', 'g')
                -- A webhook's host is kept; its path and query often hold a token.
                ELSE regexp_replace(_mask_secrets.target, '^([a-z0-9+]+://)(?:[^@/]*@)?([^/?#]*).*$', '\1\2/...') END,
           (SELECT coalesce(jsonb_object_agg(o.key, CASE WHEN o.key IN ('secret', 'password') THEN '"***"'::jsonb
                                                         ELSE o.value END), '{}'::jsonb)
            FROM jsonb_each(_mask_secrets.options) AS o);
$$;
COMMENT ON FUNCTION pystatus._mask_secrets(text, text, jsonb) IS
    'A channel''s target and options as lists show them: URLs cut after the host, secret and password hidden.';

CREATE OR REPLACE FUNCTION pystatus.alert_channel_list()
RETURNS TABLE (name text, kind text, target text, options jsonb, rules bigint)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.name, c.kind, m.target, m.options,
           (SELECT count(*) FROM pystatus.alert_rules AS r WHERE r.channel = c.name)
    FROM pystatus.alert_channels AS c
    CROSS JOIN LATERAL pystatus._mask_secrets(c.kind, c.target, c.options) AS m
    ORDER BY c.name;
$$;
COMMENT ON FUNCTION pystatus.alert_channel_list() IS
    'The channels, with secrets masked, and how many rules use each.';

CREATE OR REPLACE FUNCTION pystatus.add_alert_rule(
    service_pattern text,
    channel text,
    down_for interval DEFAULT interval '0',
    down_reports integer DEFAULT 1,
    up_for interval DEFAULT interval '0',
    remind_every interval DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM pystatus._check_service_pattern(add_alert_rule.service_pattern);
    IF NOT EXISTS (SELECT FROM pystatus.alert_channels AS c WHERE c.name = add_alert_rule.channel) THEN
        RAISE EXCEPTION 'unknown channel %', quote_nullable(add_alert_rule.channel)
            USING ERRCODE = 'PS005', HINT = 'Add it first: pystatus alerts channels add ...';
    END IF;
    IF add_alert_rule.down_for IS NULL OR add_alert_rule.down_for < interval '0'
       OR add_alert_rule.up_for IS NULL OR add_alert_rule.up_for < interval '0' THEN
        RAISE EXCEPTION 'invalid down_for % / up_for %: 0 or more', add_alert_rule.down_for, add_alert_rule.up_for
            USING ERRCODE = 'PS005';
    END IF;
    IF add_alert_rule.down_reports IS NULL OR add_alert_rule.down_reports < 1 THEN
        RAISE EXCEPTION 'invalid down_reports %: 1 or more', add_alert_rule.down_reports USING ERRCODE = 'PS005';
    END IF;
    IF add_alert_rule.remind_every < interval '1 minute' THEN
        RAISE EXCEPTION 'invalid remind_every %: at least 1 minute (or none)', add_alert_rule.remind_every
            USING ERRCODE = 'PS005';
    END IF;
    INSERT INTO pystatus.alert_rules AS r (service_pattern, channel, down_for, down_reports, up_for, remind_every)
    VALUES (add_alert_rule.service_pattern, add_alert_rule.channel, add_alert_rule.down_for,
            add_alert_rule.down_reports, add_alert_rule.up_for, add_alert_rule.remind_every)
    ON CONFLICT ON CONSTRAINT alert_rules_service_pattern_channel_key DO UPDATE
        SET down_for = EXCLUDED.down_for, down_reports = EXCLUDED.down_reports,
            up_for = EXCLUDED.up_for, remind_every = EXCLUDED.remind_every
    RETURNING r.id INTO v_id;
    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION pystatus.add_alert_rule(text, text, interval, integer, interval, interval) IS
    'Alerts channel when a service matching service_pattern (* for any characters) is down or stale '
    'for down_for and down_reports consecutive reports; sends the recovery once it has been out of '
    'down for up_for; reminds every remind_every while still down (NULL: never). Replaces the rule '
    'of the same pattern and channel. Returns its id.';

CREATE OR REPLACE FUNCTION pystatus.remove_alert_rule(rule_id bigint)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH gone AS (DELETE FROM pystatus.alert_rules AS r WHERE r.id = remove_alert_rule.rule_id RETURNING 1)
    SELECT count(*) > 0 FROM gone;
END;
COMMENT ON FUNCTION pystatus.remove_alert_rule(bigint) IS
    'Removes a rule (its open alerts end without a recovery message); false if there was none.';

------------------------------------------------------------------------------
-- Deciding: from events, rules and windows to messages
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus._alert_body(
    kind text, channel text, rule_id bigint, service_pattern text, service_name text,
    status text, down_since timestamptz, up_since timestamptz, reminders integer)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'version', 1,
        'kind', _alert_body.kind,
        'service', _alert_body.service_name,
        'status', _alert_body.status,
        'down_since', _alert_body.down_since,
        'up_since', _alert_body.up_since,
        'down_seconds', round(extract(epoch FROM coalesce(_alert_body.up_since, now()) - _alert_body.down_since), 3),
        'reminder', _alert_body.reminders,
        'current_task', s.current_task,
        'last_heartbeat', s.last_heartbeat,
        'rule', jsonb_build_object('id', _alert_body.rule_id, 'service_pattern', _alert_body.service_pattern),
        'channel', _alert_body.channel,
        'database', current_database(),
        'created_at', now(),
        'text', CASE _alert_body.kind
            WHEN 'recovered' THEN format('%s recovered (%s) after %s down', _alert_body.service_name,
                                         _alert_body.status, date_trunc('second', _alert_body.up_since - _alert_body.down_since))
            WHEN 'reminder' THEN format('%s is still %s, for %s (reminder %s)', _alert_body.service_name,
                                        _alert_body.status, date_trunc('second', now() - _alert_body.down_since),
                                        _alert_body.reminders)
            ELSE format('%s is %s since %s', _alert_body.service_name,
                        CASE _alert_body.status WHEN 'stale' THEN 'stale (silent)' ELSE _alert_body.status END,
                        to_char(_alert_body.down_since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')) END)
    FROM (SELECT) AS one
    LEFT JOIN public.system_status AS s ON s.service_name = _alert_body.service_name;
$$;
COMMENT ON FUNCTION pystatus._alert_body(text, text, bigint, text, text, text, timestamptz, timestamptz, integer) IS
    'An alert message as every channel receives it (docs/alerts.md, "The message").';

CREATE OR REPLACE FUNCTION pystatus._queue_alert(
    kind text, channel text, rule_id bigint, service_pattern text, service_name text,
    status text, down_since timestamptz, up_since timestamptz, reminders integer)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO pystatus.alert_messages (idempotency_key, channel, rule_id, service_name, kind, body)
    SELECT k.key, _queue_alert.channel, _queue_alert.rule_id, _queue_alert.service_name, _queue_alert.kind,
           pystatus._alert_body(_queue_alert.kind, _queue_alert.channel, _queue_alert.rule_id,
                                _queue_alert.service_pattern, _queue_alert.service_name, _queue_alert.status,
                                _queue_alert.down_since, _queue_alert.up_since, _queue_alert.reminders)
           || jsonb_build_object('idempotency_key', k.key)
    FROM (SELECT gen_random_uuid() AS key) AS k;
$$;
COMMENT ON FUNCTION pystatus._queue_alert(text, text, bigint, text, text, text, timestamptz, timestamptz, integer) IS
    'Queues one alert message, with a new idempotency key, for the workers to deliver.';

-- The status a service's raw history gives at a time (stale once silent past
-- its deadline), before any maintenance window: what a window's edge changes.
CREATE OR REPLACE FUNCTION pystatus._raw_status_at(service_name text, at timestamptz)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN pystatus.goes_stale(h.status)
                     AND h.heartbeat_timestamp + coalesce(e.expected_interval, interval '60 seconds')
                         + coalesce(e.grace, interval '60 seconds') < _raw_status_at.at
                THEN 'stale' ELSE h.status::text END
    FROM (SELECT h1.status, h1.heartbeat_timestamp FROM public.system_status_history AS h1
          WHERE h1.service_name = _raw_status_at.service_name
            AND pystatus._history_hour(h1.heartbeat_timestamp) <= pystatus._history_hour(_raw_status_at.at)
            AND h1.heartbeat_timestamp <= _raw_status_at.at
          ORDER BY pystatus._history_hour(h1.heartbeat_timestamp) DESC, h1.heartbeat_timestamp DESC,
                   h1.ctid DESC
          LIMIT 1) AS h
    LEFT JOIN pystatus.service_expectations AS e ON e.service_name = _raw_status_at.service_name;
$$;
COMMENT ON FUNCTION pystatus._raw_status_at(text, timestamptz) IS
    'A service''s status at a time from its raw history (stale once silent past its deadline), '
    'maintenance windows not applied; NULL before its first row.';

-- When the service's current down (into_down) or up spell began. From its
-- newest event that crossed between down and not down, when that crossing
-- goes the right way; otherwise (events missing: written before alerts were
-- installed, or expired during a long outage) from raw history; a service
-- still reported up but silent past its deadline is down from the deadline.
CREATE OR REPLACE FUNCTION pystatus._spell_began(service_name text, into_down boolean)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN _spell_began.into_down AND l.reported_status NOT IN ('down', 'stale') THEN l.stale_after
        ELSE coalesce(
            (SELECT CASE WHEN (pystatus.status_category(e.to_status) = 'down') = _spell_began.into_down
                         THEN e.at END
             FROM pystatus.status_events AS e
             WHERE e.service_name = _spell_began.service_name
               AND (pystatus.status_category(e.to_status) = 'down')
                   <> coalesce(pystatus.status_category(e.from_status) = 'down', false)
             ORDER BY e.at DESC, e.id DESC LIMIT 1),
            -- The first row of the current spell in raw history.
            (SELECT h.heartbeat_timestamp FROM public.system_status_history AS h
             CROSS JOIN (SELECT coalesce(
                 (SELECT h2.heartbeat_timestamp FROM public.system_status_history AS h2
                  WHERE h2.service_name = _spell_began.service_name
                    AND (h2.status IN ('down', 'stale')) <> _spell_began.into_down
                  ORDER BY pystatus._history_hour(h2.heartbeat_timestamp) DESC, h2.heartbeat_timestamp DESC
                  LIMIT 1), '-infinity') AS at) AS previous
             WHERE h.service_name = _spell_began.service_name
               AND pystatus._history_hour(h.heartbeat_timestamp) >= pystatus._history_hour(previous.at)
               AND h.heartbeat_timestamp > previous.at
             ORDER BY pystatus._history_hour(h.heartbeat_timestamp), h.heartbeat_timestamp
             LIMIT 1),
            l.last_heartbeat)
        END
    FROM pystatus.live_status AS l
    WHERE l.service_name = _spell_began.service_name;
$$;
COMMENT ON FUNCTION pystatus._spell_began(text, boolean) IS
    'When the service went down (into_down) or came back up this time: from its events, else its raw '
    'history; the deadline for a service silent past it but not marked stale yet.';

-- It writes only alert tables and events, and marks nothing stale itself (the
-- worker calls alert_sweep() first, in a transaction of its own): no status
-- write ever waits for it. Its own waits are bounded too, e.g. behind a DBA
-- removing a rule in an open transaction: it fails, and the next round retries.
CREATE OR REPLACE FUNCTION pystatus.evaluate_alerts(OUT messages integer, OUT next_check timestamptz)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
    v_from timestamptz;
    v_pair record;
    v_ready timestamptz;
BEGIN
    messages := 0;
    -- A hot standby is read-only: its primary does this work, and replication
    -- brings the result. pg_cron runs no job there; a call by hand skips.
    IF pg_is_in_recovery() THEN
        next_check := now() + interval '1 minute';
        RETURN;
    END IF;
    -- One evaluation at a time (several workers): the others come back soon.
    IF NOT pg_try_advisory_xact_lock(hashtext('pystatus.evaluate_alerts')) THEN
        next_check := now() + interval '1 second';
        RETURN;
    END IF;
    -- The edges of maintenance windows since the last evaluation, for the
    -- services whose effective status they change (down or stale inside).
    SELECT p.evaluated_until INTO v_from FROM pystatus.alerts_progress AS p FOR UPDATE;
    INSERT INTO pystatus.status_events (service_name, at, from_status, to_status, cause)
    SELECT s.service_name, edge.at,
           CASE WHEN edge.opening THEN r.status ELSE 'maintenance' END,
           CASE WHEN edge.opening THEN 'maintenance' ELSE r.status END,
           CASE WHEN edge.opening THEN 'window started' ELSE 'window ended' END
    FROM pystatus.maintenance_occurrences(v_from, now()) AS o
    CROSS JOIN LATERAL (VALUES (o.starts, true), (o.ends, false)) AS edge(at, opening)
    JOIN public.system_status AS s ON s.service_name LIKE o.like_pattern
    CROSS JOIN LATERAL (SELECT pystatus._raw_status_at(s.service_name, edge.at) AS status) AS r
    WHERE o.kind = 'maintenance' AND edge.at > v_from AND edge.at <= now()
      AND r.status IN ('down', 'stale')
      -- an edge inside another window of the same service changes nothing
      AND NOT EXISTS (SELECT FROM pystatus.maintenance_occurrences(edge.at, edge.at + interval '1 microsecond') AS x
                      WHERE x.kind = 'maintenance' AND s.service_name LIKE x.like_pattern
                        AND x.window_id <> o.window_id AND x.starts < edge.at AND x.ends > edge.at);
    UPDATE pystatus.alerts_progress SET evaluated_until = now();

    -- A service deleted from system_status while alerted: its alerts end.
    DELETE FROM pystatus.alert_state AS st
    WHERE NOT EXISTS (SELECT FROM public.system_status AS s WHERE s.service_name = st.service_name);

    next_check := now() + interval '1 hour';
    -- The pairs to look at: services down now with a rule, and the open alerts.
    FOR v_pair IN
        SELECT r.id AS rule_id, r.service_pattern, r.channel, r.down_for, r.down_reports, r.up_for, r.remind_every,
               l.service_name, l.effective_status, l.maintenance_until, st.down_since AS alerted_since, st.alerted_at, st.reminded_at,
               st.reminders,
               EXISTS (SELECT FROM pystatus.maintenance_occurrences(now(), now() + interval '1 microsecond') AS o
                       WHERE o.kind = 'snooze' AND l.service_name LIKE o.like_pattern) AS snoozed
        FROM pystatus.live_status AS l
        JOIN pystatus.alert_rules AS r ON l.service_name LIKE r.like_pattern
        LEFT JOIN pystatus.alert_state AS st ON st.rule_id = r.id AND st.service_name = l.service_name
        WHERE st.rule_id IS NOT NULL OR l.effective_status IN ('down', 'stale')
        ORDER BY l.service_name, r.id
    LOOP
        IF v_pair.maintenance_until IS NOT NULL AND v_pair.effective_status = 'maintenance' THEN
            -- Down inside a maintenance window: muted, neither alerted nor recovered.
            CONTINUE;
        ELSIF v_pair.effective_status IN ('down', 'stale') THEN
            IF v_pair.alerted_at IS NULL THEN
                -- Not alerted yet: once down long enough and for enough reports.
                v_ready := pystatus._spell_began(v_pair.service_name, true) + v_pair.down_for;
                IF v_pair.snoozed THEN
                    CONTINUE;
                ELSIF v_ready > now() THEN
                    next_check := least(next_check, v_ready);
                ELSIF v_pair.effective_status = 'stale' OR v_pair.down_reports = 1
                      OR (SELECT count(*) FROM (
                              SELECT FROM public.system_status_history AS h
                              WHERE h.service_name = v_pair.service_name AND h.status = 'down'
                                AND pystatus._history_hour(h.heartbeat_timestamp)
                                    >= pystatus._history_hour(v_ready - v_pair.down_for)
                                AND h.heartbeat_timestamp >= v_ready - v_pair.down_for
                              LIMIT v_pair.down_reports) AS d) >= v_pair.down_reports THEN
                    INSERT INTO pystatus.alert_state (rule_id, service_name, down_since, alerted_at)
                    VALUES (v_pair.rule_id, v_pair.service_name, v_ready - v_pair.down_for, now());
                    PERFORM pystatus._queue_alert('down', v_pair.channel, v_pair.rule_id, v_pair.service_pattern,
                                                  v_pair.service_name, v_pair.effective_status,
                                                  v_ready - v_pair.down_for, NULL, 0);
                    messages := messages + 1;
                END IF;
            ELSIF v_pair.remind_every IS NOT NULL THEN
                -- Alerted: a reminder every remind_every (not while snoozed).
                v_ready := coalesce(v_pair.reminded_at, v_pair.alerted_at) + v_pair.remind_every;
                IF v_ready > now() THEN
                    next_check := least(next_check, v_ready);
                ELSIF NOT v_pair.snoozed THEN
                    UPDATE pystatus.alert_state SET reminded_at = now(), reminders = reminders + 1
                    WHERE rule_id = v_pair.rule_id AND service_name = v_pair.service_name;
                    PERFORM pystatus._queue_alert('reminder', v_pair.channel, v_pair.rule_id, v_pair.service_pattern,
                                                  v_pair.service_name, v_pair.effective_status,
                                                  v_pair.alerted_since, NULL, v_pair.reminders + 1);
                    messages := messages + 1;
                    next_check := least(next_check, now() + v_pair.remind_every);
                END IF;
            END IF;
        ELSIF v_pair.alerted_at IS NOT NULL THEN
            -- Alerted, and out of down: the recovery once it has held for up_for.
            v_ready := coalesce(pystatus._spell_began(v_pair.service_name, false), now()) + v_pair.up_for;
            IF v_ready > now() THEN
                next_check := least(next_check, v_ready);
            ELSE
                DELETE FROM pystatus.alert_state WHERE rule_id = v_pair.rule_id AND service_name = v_pair.service_name;
                PERFORM pystatus._queue_alert('recovered', v_pair.channel, v_pair.rule_id, v_pair.service_pattern,
                                              v_pair.service_name, v_pair.effective_status,
                                              v_pair.alerted_since, v_ready - v_pair.up_for, v_pair.reminders);
                messages := messages + 1;
            END IF;
        END IF;
    END LOOP;

    -- The next deadline of a service that may fall silent, and the next edge
    -- of a maintenance window.
    next_check := least(next_check,
        (SELECT min(l.stale_after) FROM pystatus.live_status AS l
         WHERE pystatus.goes_stale(l.reported_status) AND l.stale_after > now()),
        (SELECT min(CASE WHEN o.starts > now() THEN o.starts ELSE o.ends END)
         FROM pystatus.maintenance_occurrences(now(), now() + interval '1 day') AS o));
END;
$$;
COMMENT ON FUNCTION pystatus.evaluate_alerts() IS
    'Turns status changes into alert messages by the rules: records the edges of maintenance '
    'windows as events, then writes the '
    'down, reminder and recovery messages that are due. Returns how many it wrote and when it '
    'should run next (a deadline, a rule''s wait, a window''s edge). One evaluation at a time. '
    'On a hot standby (a read-only replica) it writes nothing: 0 messages, next check in a minute.';

CREATE OR REPLACE FUNCTION pystatus.alert_sweep()
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pystatus.sweep() $$;
COMMENT ON FUNCTION pystatus.alert_sweep() IS
    'pystatus.sweep() for the alert worker (pystatus_alerter), which calls it before each '
    'evaluation, in a transaction of its own, so that a silent service is marked stale within a '
    'second of its deadline rather than at the sweep job''s next minute. On a hot standby it '
    'marks nothing and returns 0, as sweep() does.';

------------------------------------------------------------------------------
-- Delivering: claim, then report the outcome (pystatus/alerts.py)
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus._alert_give_up_after()
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN interval '24 hours';
COMMENT ON FUNCTION pystatus._alert_give_up_after() IS
    'How long a message is retried before it is marked failed.';

CREATE OR REPLACE FUNCTION pystatus.claim_alert_messages(
    worker text, max_messages integer DEFAULT 10, lease interval DEFAULT interval '3 minutes',
    message_id bigint DEFAULT NULL)
RETURNS TABLE (message_id bigint, attempt integer, idempotency_key uuid, channel text, kind text,
               target text, options jsonb, body jsonb)
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH due AS (
        -- SKIP LOCKED: two workers never take the same message; a message
        -- another worker holds (claimed_until ahead) is left to it; after the
        -- lease (that worker died) it is sent again, with the same key.
        -- A channel's messages about one service go in order.
        SELECT m.id FROM pystatus.alert_messages AS m
        WHERE m.state = 'pending' AND m.next_attempt_at <= now()
          AND (m.claimed_until IS NULL OR m.claimed_until < now())
          AND (claim_alert_messages.message_id IS NULL OR m.id = claim_alert_messages.message_id)
          AND NOT EXISTS (SELECT FROM pystatus.alert_messages AS p
                          WHERE p.state = 'pending' AND p.channel = m.channel
                            AND p.service_name IS NOT DISTINCT FROM m.service_name AND p.id < m.id)
        ORDER BY m.next_attempt_at, m.id
        LIMIT claim_alert_messages.max_messages
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE pystatus.alert_messages AS m
        SET attempts = m.attempts + 1, claimed_until = now() + claim_alert_messages.lease
        FROM due WHERE m.id = due.id
        RETURNING m.*
    ), logged AS (
        INSERT INTO pystatus.alert_attempts (message_id, attempt, started_at, worker)
        SELECT c.id, c.attempts, now(), claim_alert_messages.worker FROM claimed AS c
    )
    SELECT c.id, c.attempts, c.idempotency_key, c.channel, ch.kind, ch.target, ch.options, c.body
    FROM claimed AS c JOIN pystatus.alert_channels AS ch ON ch.name = c.channel
    ORDER BY c.id;
$$;
COMMENT ON FUNCTION pystatus.claim_alert_messages(text, integer, interval, bigint) IS
    'Takes up to max_messages due messages (or only message_id) for this worker for lease (longer '
    'than a channel''s timeout), logging the attempt; returns each with its channel. Report each '
    'outcome with pystatus.finish_alert_attempt().';

CREATE OR REPLACE FUNCTION pystatus.finish_alert_attempt(message_id bigint, attempt integer, error text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_state text;
BEGIN
    UPDATE pystatus.alert_attempts AS a
    SET finished_at = clock_timestamp(), outcome = CASE WHEN finish_alert_attempt.error IS NULL THEN 'sent' ELSE 'failed' END,
        error = left(finish_alert_attempt.error, 2000)
    WHERE a.message_id = finish_alert_attempt.message_id AND a.attempt = finish_alert_attempt.attempt;
    -- An attempt whose lease ran out (the message was claimed again since) only
    -- says whether it got through: the newer attempt owns the message.
    UPDATE pystatus.alert_messages AS m
    SET state = CASE WHEN finish_alert_attempt.error IS NULL THEN 'sent'
                     WHEN m.state = 'sent' OR m.attempts <> finish_alert_attempt.attempt THEN m.state
                     WHEN m.kind = 'test' THEN 'failed'  -- a test says what happened once
                     WHEN m.created_at < now() - pystatus._alert_give_up_after() THEN 'failed'
                     ELSE 'pending' END,
        sent_at = CASE WHEN finish_alert_attempt.error IS NULL THEN coalesce(m.sent_at, clock_timestamp()) ELSE m.sent_at END,
        claimed_until = CASE WHEN m.attempts = finish_alert_attempt.attempt THEN NULL ELSE m.claimed_until END,
        -- Retries back off: 5 s, 10 s, 20 s ... at most 10 minutes apart.
        next_attempt_at = CASE WHEN finish_alert_attempt.error IS NULL OR m.attempts <> finish_alert_attempt.attempt
                               THEN m.next_attempt_at
                               ELSE clock_timestamp() + least(interval '10 minutes',
                                        interval '5 seconds' * power(2, least(finish_alert_attempt.attempt, 12) - 1)) END
    WHERE m.id = finish_alert_attempt.message_id
    RETURNING m.state INTO v_state;
    RETURN v_state;
END;
$$;
COMMENT ON FUNCTION pystatus.finish_alert_attempt(bigint, integer, text) IS
    'Records how an attempt ended (error NULL: delivered). A failed message is retried with '
    'exponential backoff (5 s doubling, at most 10 minutes apart) until it is sent or 24 hours old '
    '(failed); a test message is not retried. Returns the message''s state.';

CREATE OR REPLACE FUNCTION pystatus.send_test_alert(channel text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_key uuid := gen_random_uuid();
BEGIN
    IF NOT EXISTS (SELECT FROM pystatus.alert_channels AS c WHERE c.name = send_test_alert.channel) THEN
        RAISE EXCEPTION 'unknown channel %', quote_nullable(send_test_alert.channel) USING ERRCODE = 'PS005';
    END IF;
    INSERT INTO pystatus.alert_messages (idempotency_key, channel, kind, body)
    VALUES (v_key, send_test_alert.channel, 'test', jsonb_build_object(
        'version', 1, 'kind', 'test', 'idempotency_key', v_key, 'channel', send_test_alert.channel,
        'database', current_database(), 'created_at', now(),
        'text', format('pystatus test message for channel %s', send_test_alert.channel)))
    RETURNING id INTO v_id;
    PERFORM pg_notify(pystatus._alerts_channel(), '');
    RETURN v_id;
END;
$$;
COMMENT ON FUNCTION pystatus.send_test_alert(text) IS
    'Queues a test message for a channel (delivered by the running worker); returns its id.';

CREATE OR REPLACE FUNCTION pystatus.alert_log(since timestamptz DEFAULT now() - interval '1 day')
RETURNS TABLE (message_id bigint, created_at timestamptz, channel text, service_name text, kind text,
               state text, attempts integer, sent_at timestamptz, last_error text, idempotency_key uuid, body_text text)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.id, m.created_at, m.channel, m.service_name, m.kind, m.state, m.attempts, m.sent_at,
           (SELECT a.error FROM pystatus.alert_attempts AS a WHERE a.message_id = m.id AND a.error IS NOT NULL
            ORDER BY a.attempt DESC LIMIT 1),
           m.idempotency_key, m.body ->> 'text'
    FROM pystatus.alert_messages AS m
    WHERE m.created_at >= alert_log.since
    ORDER BY m.id DESC;
$$;
COMMENT ON FUNCTION pystatus.alert_log(timestamptz) IS
    'The messages written since then, newest first: channel, service, kind, state, attempts and '
    'the last error (the attempts themselves are in pystatus.alert_attempts).';

CREATE OR REPLACE FUNCTION pystatus._expire_alerts()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_until timestamptz := now() - pystatus.history_retention();
    v_events integer;
    v_messages integer;
BEGIN
    DELETE FROM pystatus.status_events WHERE recorded_at < v_until;
    GET DIAGNOSTICS v_events = ROW_COUNT;
    DELETE FROM pystatus.alert_messages WHERE created_at < v_until AND state <> 'pending';
    GET DIAGNOSTICS v_messages = ROW_COUNT;
    RETURN v_events + v_messages;
END;
$$;
COMMENT ON FUNCTION pystatus._expire_alerts() IS
    'Deletes events and delivered or failed messages older than history''s retention (maintain() runs it).';
