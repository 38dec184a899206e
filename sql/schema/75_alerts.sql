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
    'The LISTEN/NOTIFY channel that wakes alert workers for a test message.';

------------------------------------------------------------------------------
-- Channels and rules
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus._channel_options(kind text)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE kind
    WHEN 'webhook' THEN ARRAY['secret', 'timeout', 'group_threshold']
    WHEN 'email' THEN ARRAY['host', 'port', 'starttls', 'ssl', 'username', 'password', 'sender', 'timeout',
                            'group_threshold']
    -- Apprise URLs take their own timeouts (?cto=, ?rto=)
    WHEN 'apprise' THEN ARRAY['group_threshold']
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
    IF add_alert_channel.options ? 'group_threshold'
       AND (jsonb_typeof(add_alert_channel.options -> 'group_threshold') <> 'number'
            OR (add_alert_channel.options ->> 'group_threshold')::numeric NOT BETWEEN 0 AND 1000000
            OR (add_alert_channel.options ->> 'group_threshold')::numeric
               <> trunc((add_alert_channel.options ->> 'group_threshold')::numeric)) THEN
        RAISE EXCEPTION 'invalid group_threshold %: a whole number of messages (0: never summed up)',
            add_alert_channel.options -> 'group_threshold' USING ERRCODE = 'PS005';
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
    '(target: Apprise URLs, with their own timeout parameters). Every kind takes group_threshold: '
    'from how many messages of one kind due at once they go as one summary (0: never). PS005 on bad input.';

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

-- What a message says about one service: a message about one service is this
-- with the header of its channel (_alert_header()); a summary carries one of
-- these per service. current_task is free text a writer set: cleaned, so that
-- no control or escape character reaches a receiver.
CREATE OR REPLACE FUNCTION pystatus._alert_entry(
    kind text, rule_id bigint, service_pattern text, service_name text, status text,
    down_since timestamptz, up_since timestamptz, reminders integer,
    current_task text, last_heartbeat timestamptz)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
RETURN jsonb_build_object(
    'service', service_name,
    'status', status,
    'down_since', down_since,
    'up_since', up_since,
    'down_seconds', round(extract(epoch FROM coalesce(up_since, now()) - down_since), 3),
    'reminder', reminders,
    'current_task', pystatus.clean_text(current_task),
    'last_heartbeat', last_heartbeat,
    'rule', jsonb_build_object('id', rule_id, 'service_pattern', service_pattern),
    'text', CASE kind
        WHEN 'recovered' THEN format('%s recovered (%s) after %s down', service_name, status,
                                     date_trunc('second', up_since - down_since))
        WHEN 'reminder' THEN format('%s is still %s, for %s (reminder %s)', service_name, status,
                                    date_trunc('second', now() - down_since), reminders)
        ELSE format('%s is %s since %s', service_name,
                    CASE status WHEN 'stale' THEN 'stale (silent)' ELSE status END,
                    to_char(down_since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')) END);
COMMENT ON FUNCTION pystatus._alert_entry(text, bigint, text, text, text, timestamptz, timestamptz, integer, text, timestamptz) IS
    'What an alert message says about one service (docs/alerts.md, "The message"); a summary '
    'carries one per service.';

CREATE OR REPLACE FUNCTION pystatus._alert_header(kind text, channel text)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
RETURN jsonb_build_object('version', 1, 'kind', kind, 'channel', channel, 'database', current_database(),
                          'created_at', now());
COMMENT ON FUNCTION pystatus._alert_header(text, text) IS
    'What every message of a channel carries, whatever it is about (the idempotency key is added as it is queued).';

-- A summary's text names a few of its services: it is an email's subject and
-- a chat line.
CREATE OR REPLACE FUNCTION pystatus._alert_summary_text(kind text, services text[])
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN format('%s services %s: %s%s', cardinality(services),
              CASE kind WHEN 'down' THEN 'are down or stale' WHEN 'reminder' THEN 'are still down or stale'
                        ELSE 'recovered' END,
              array_to_string(services[1:3], ', '),
              CASE WHEN cardinality(services) > 3 THEN format(' and %s more', cardinality(services) - 3) END);
COMMENT ON FUNCTION pystatus._alert_summary_text(text, text[]) IS
    'The text of a summary: how many services, what happened to them, the first three names.';

CREATE OR REPLACE FUNCTION pystatus._alert_group_threshold()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 10;
COMMENT ON FUNCTION pystatus._alert_group_threshold() IS
    'How many messages of one kind due on a channel at once go as one summary, for a channel '
    'without its own group_threshold option.';

-- A summary's body lists each of its services: past this many, a storm is
-- summed up in several messages, so that no receiver is sent megabytes.
CREATE OR REPLACE FUNCTION pystatus._alert_group_limit()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 1000;
COMMENT ON FUNCTION pystatus._alert_group_limit() IS
    'The most services one summary message lists.';

-- The status a service's raw history gives at a time (stale once silent past
-- its deadline), before any maintenance window: what a window's edge changes.
CREATE OR REPLACE FUNCTION pystatus._raw_status_at(service_name text, at timestamptz)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN pystatus.goes_stale(h.status)
                     AND h.heartbeat_timestamp + coalesce(e.expected_interval, pystatus.default_expected_interval())
                         + coalesce(e.grace, pystatus.default_grace()) < _raw_status_at.at
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

-- When a service's current down (into_down) or up spell began by its raw
-- history: its first row since the last row of the other kind. For a service
-- whose events do not say (written before alerts were installed, or expired
-- during a long outage): evaluate_alerts() reads the events first.
CREATE OR REPLACE FUNCTION pystatus._spell_began_in_history(service_name text, into_down boolean)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.heartbeat_timestamp FROM public.system_status_history AS h
    CROSS JOIN (SELECT coalesce(
        (SELECT h2.heartbeat_timestamp FROM public.system_status_history AS h2
         WHERE h2.service_name = _spell_began_in_history.service_name
           AND (h2.status IN ('down', 'stale')) <> _spell_began_in_history.into_down
         ORDER BY pystatus._history_hour(h2.heartbeat_timestamp) DESC, h2.heartbeat_timestamp DESC
         LIMIT 1), '-infinity') AS at) AS previous
    WHERE h.service_name = _spell_began_in_history.service_name
      AND pystatus._history_hour(h.heartbeat_timestamp) >= pystatus._history_hour(previous.at)
      AND h.heartbeat_timestamp > previous.at
    ORDER BY pystatus._history_hour(h.heartbeat_timestamp), h.heartbeat_timestamp
    LIMIT 1;
$$;
COMMENT ON FUNCTION pystatus._spell_began_in_history(text, boolean) IS
    'When the service went down (into_down) or came back up this time, by its raw history alone; '
    'NULL without history.';

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
    v_snoozed text[];
BEGIN
    messages := 0;
    -- A hot standby is read-only: its primary does this work, and replication
    -- brings the result. pg_cron runs no job there; a call by hand skips.
    IF pg_is_in_recovery() THEN
        next_check := now() + interval '1 minute';
        RETURN;
    END IF;
    -- One evaluation at a time (several workers): the others come back soon.
    IF NOT pystatus._try_job_lock('evaluate_alerts') THEN
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

    SELECT coalesce(array_agg(o.like_pattern), '{}') INTO v_snoozed
    FROM pystatus.maintenance_occurrences(now(), now() + interval '1 microsecond') AS o
    WHERE o.kind = 'snooze';

    -- Every pair of a rule and a service that is down now or alerted, decided
    -- in one statement, whatever their number (a network partition silences
    -- thousands of services at once): what is due, the open alerts it opens,
    -- reminds or closes, and the messages.
    WITH pairs AS MATERIALIZED (
        SELECT r.id AS rule_id, r.service_pattern, r.channel, r.down_for, r.down_reports, r.up_for,
               r.remind_every, l.service_name, l.effective_status,
               l.effective_status IN ('down', 'stale') AS is_down, l.reported_status, l.stale_after,
               l.last_heartbeat, l.current_task,
               st.down_since AS alerted_since, st.alerted_at, st.reminded_at, st.reminders,
               l.service_name LIKE ANY (v_snoozed) AS snoozed
        FROM pystatus.live_status AS l
        JOIN pystatus.alert_rules AS r ON l.service_name LIKE r.like_pattern
        LEFT JOIN pystatus.alert_state AS st ON st.rule_id = r.id AND st.service_name = l.service_name
        WHERE (st.rule_id IS NOT NULL OR l.effective_status IN ('down', 'stale'))
          -- Down inside a maintenance window: muted, neither alerted nor recovered.
          AND NOT (l.maintenance_until IS NOT NULL AND l.effective_status = 'maintenance')
          -- Not alerted yet and snoozed: nothing to decide.
          AND NOT (st.rule_id IS NULL AND l.service_name LIKE ANY (v_snoozed))
    ), spells AS MATERIALIZED (
        -- When the current down spell began (not alerted yet) or up spell
        -- (alerted, out of down), once per service whatever its rules: a
        -- service still reported up but silent past its deadline is down from
        -- the deadline; otherwise its newest event that crossed between down
        -- and not down says, when that crossing goes the right way; else its
        -- raw history.
        SELECT w.service_name,
               CASE WHEN w.is_down AND w.reported_status NOT IN ('down', 'stale') THEN w.stale_after
                    ELSE coalesce(crossed.at, pystatus._spell_began_in_history(w.service_name, w.is_down),
                                  w.last_heartbeat) END AS began
        FROM (SELECT DISTINCT p.service_name, p.is_down, p.reported_status, p.stale_after, p.last_heartbeat
              FROM pairs AS p
              WHERE (p.alerted_at IS NULL) = p.is_down) AS w
        LEFT JOIN LATERAL (
            SELECT CASE WHEN (pystatus.status_category(e.to_status) = 'down') = w.is_down THEN e.at END AS at
            FROM pystatus.status_events AS e
            WHERE e.service_name = w.service_name
              AND (pystatus.status_category(e.to_status) = 'down')
                  <> coalesce(pystatus.status_category(e.from_status) = 'down', false)
            ORDER BY e.at DESC, e.id DESC
            LIMIT 1) AS crossed ON true
    ), timed AS (
        SELECT p.*, coalesce(sp.began, now()) AS began,
               CASE WHEN NOT p.is_down THEN coalesce(sp.began, now()) + p.up_for
                    WHEN p.alerted_at IS NULL THEN sp.began + p.down_for
                    -- Alerted: a reminder every remind_every (NULL: never).
                    ELSE coalesce(p.reminded_at, p.alerted_at) + p.remind_every END AS ready
        FROM pairs AS p
        LEFT JOIN spells AS sp ON sp.service_name = p.service_name
    ), decided AS MATERIALIZED (
        SELECT t.*, CASE
            WHEN t.ready IS NULL OR t.ready > now() THEN NULL
            -- Out of down for up_for: the recovery.
            WHEN NOT t.is_down THEN 'recovered'
            WHEN t.alerted_at IS NOT NULL THEN CASE WHEN NOT t.snoozed THEN 'reminder' END
            -- Down long enough, and for enough reports (silence is enough).
            WHEN t.effective_status = 'stale' OR t.down_reports = 1
                 OR (SELECT count(*) FROM (
                         SELECT FROM public.system_status_history AS h
                         WHERE h.service_name = t.service_name AND h.status = 'down'
                           AND pystatus._history_hour(h.heartbeat_timestamp) >= pystatus._history_hour(t.began)
                           AND h.heartbeat_timestamp >= t.began
                         LIMIT t.down_reports) AS d) >= t.down_reports THEN 'down'
            END AS action
        FROM timed AS t
    ), opened AS (
        INSERT INTO pystatus.alert_state (rule_id, service_name, down_since, alerted_at)
        SELECT d.rule_id, d.service_name, d.began, now() FROM decided AS d WHERE d.action = 'down'
    ), reminded AS (
        UPDATE pystatus.alert_state AS st SET reminded_at = now(), reminders = st.reminders + 1
        FROM decided AS d
        WHERE d.action = 'reminder' AND st.rule_id = d.rule_id AND st.service_name = d.service_name
    ), closed AS (
        DELETE FROM pystatus.alert_state AS st USING decided AS d
        WHERE d.action = 'recovered' AND st.rule_id = d.rule_id AND st.service_name = d.service_name
    ), entries AS (
        SELECT d.channel, d.action AS kind, d.rule_id, d.service_name,
               pystatus._alert_entry(d.action, d.rule_id, d.service_pattern, d.service_name, d.effective_status,
                                     CASE d.action WHEN 'down' THEN d.began ELSE d.alerted_since END,
                                     CASE d.action WHEN 'recovered' THEN d.began END,
                                     CASE d.action WHEN 'down' THEN 0 WHEN 'reminder' THEN d.reminders + 1
                                                   ELSE d.reminders END,
                                     d.current_task, d.last_heartbeat) AS entry,
               count(*) OVER (PARTITION BY d.channel, d.action) AS due,
               (row_number() OVER (PARTITION BY d.channel, d.action ORDER BY d.service_name, d.rule_id) - 1)
                   / pystatus._alert_group_limit() AS part,
               coalesce((c.options ->> 'group_threshold')::integer, pystatus._alert_group_threshold()) AS threshold
        FROM decided AS d
        JOIN pystatus.alert_channels AS c ON c.name = d.channel
        WHERE d.action IS NOT NULL
    ), queued AS MATERIALIZED (
        -- Each alone, or, when at least the channel's threshold of one kind are
        -- due at once, summed up in one message (each service's open alert is
        -- still its own).
        SELECT e.channel, e.kind, e.rule_id, e.service_name, NULL::varchar(64)[] AS services,
               e.entry || pystatus._alert_header(e.kind, e.channel) AS body, gen_random_uuid() AS key
        FROM entries AS e
        WHERE e.threshold = 0 OR e.due < e.threshold
        UNION ALL
        SELECT e.channel, e.kind, NULL, NULL, array_agg(e.service_name ORDER BY e.service_name, e.rule_id),
               pystatus._alert_header(e.kind, e.channel) || jsonb_build_object(
                   'service', NULL,
                   'services', jsonb_agg(e.entry ORDER BY e.service_name, e.rule_id),
                   'text', pystatus._alert_summary_text(
                       e.kind, array_agg(e.service_name::text ORDER BY e.service_name, e.rule_id))),
               gen_random_uuid()
        FROM entries AS e
        WHERE e.threshold > 0 AND e.due >= e.threshold
        GROUP BY e.channel, e.kind, e.part
    ), inserted AS (
        INSERT INTO pystatus.alert_messages (idempotency_key, channel, rule_id, service_name, services, kind, body)
        SELECT q.key, q.channel, q.rule_id, q.service_name, q.services, q.kind,
               q.body || jsonb_build_object('idempotency_key', q.key)
        FROM queued AS q
        ORDER BY coalesce(q.service_name, q.services[1]), q.rule_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM inserted),
           least(now() + interval '1 hour',
                 min(CASE WHEN d.action = 'reminder' THEN now() + d.remind_every
                          WHEN d.action IS NULL AND d.ready > now() THEN d.ready END))
    INTO messages, next_check
    FROM decided AS d;

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
    'windows as events, then writes the down, reminder and recovery messages that are due, for '
    'every service at once (those of one kind due on a channel together, from its group_threshold '
    'on, as summaries). Returns how many it wrote and when it '
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

-- How many messages of one channel are sent at once, by all workers together:
-- a slow or hanging receiver holds this many of the workers' sends, and the
-- other channels' messages go on being sent beside it.
CREATE OR REPLACE FUNCTION pystatus._alert_sends_per_channel()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 2;
COMMENT ON FUNCTION pystatus._alert_sends_per_channel() IS
    'How many of a channel''s messages are being sent at once, at most, by all workers together.';

-- A channel's messages about one service go out in order: a message waits
-- while an earlier one of its channel about its service is pending, and a
-- summary while one about any of its services is, or an earlier summary
-- (summaries of a channel go out in order: comparing their lists of services
-- would cost the product of their lengths). Each is a probe of an index of
-- the pending queue (20_tables.sql): a claim reads what it takes.
CREATE OR REPLACE FUNCTION pystatus._alert_in_turn(
    message_id bigint, channel text, service_name text, services text[])
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN NOT EXISTS (
        SELECT FROM pystatus.alert_messages AS p
        WHERE p.state = 'pending' AND p.channel = _alert_in_turn.channel
          AND p.service_name = ANY (coalesce(_alert_in_turn.services, ARRAY[_alert_in_turn.service_name]))
          AND p.id < _alert_in_turn.message_id)
    AND NOT EXISTS (
        SELECT FROM pystatus.alert_messages AS p
        WHERE p.state = 'pending' AND p.channel = _alert_in_turn.channel
          AND p.service_name IS NULL AND p.services IS NOT NULL AND p.id < _alert_in_turn.message_id
          AND (_alert_in_turn.services IS NOT NULL
               OR p.services::text[] @> ARRAY[_alert_in_turn.service_name]));
COMMENT ON FUNCTION pystatus._alert_in_turn(bigint, text, text, text[]) IS
    'Whether a message may be sent now: no earlier pending message of its channel is about its '
    'service (for a summary: about one of its services, or an earlier summary). A test message is '
    'always in turn.';

CREATE OR REPLACE FUNCTION pystatus.claim_alert_messages(
    worker text, max_messages integer DEFAULT 10, lease interval DEFAULT interval '3 minutes',
    message_id bigint DEFAULT NULL)
RETURNS TABLE (message_id bigint, attempt integer, idempotency_key uuid, channel text, kind text,
               target text, options jsonb, body jsonb)
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- A claim reads a few rows: compiling its plan would cost more than running it.
SET jit = off
AS $$
    -- SKIP LOCKED: two workers never take the same message; a message
    -- another worker holds (claimed_until ahead) is left to it; after the
    -- lease (that worker died) it is sent again, with the same key.
    WITH one AS (
        -- One message by its id (a test, sent by the command that queued it).
        SELECT m.id FROM pystatus.alert_messages AS m
        WHERE m.id = claim_alert_messages.message_id AND m.state = 'pending'
          AND m.next_attempt_at <= now() AND (m.claimed_until IS NULL OR m.claimed_until < now())
          AND pystatus._alert_in_turn(m.id, m.channel, m.service_name, m.services::text[])
        FOR UPDATE SKIP LOCKED
    ), due AS (
        -- Channel by channel, each channel's due messages in order
        -- (alert_messages_due), as many as it may still send at once: a claim
        -- reads about what it takes, however long the queue, and a channel
        -- whose receiver is slow cannot take every send of the workers.
        SELECT d.id
        FROM pystatus.alert_channels AS c
        CROSS JOIN LATERAL (
            SELECT count(*) AS n FROM pystatus.alert_messages AS f
            WHERE f.channel = c.name AND f.state = 'pending' AND f.claimed_until IS NOT NULL
              AND f.claimed_until >= now()) AS sending
        CROSS JOIN LATERAL (
            SELECT m.id, m.next_attempt_at FROM pystatus.alert_messages AS m
            WHERE m.channel = c.name AND m.state = 'pending' AND m.next_attempt_at <= now()
              AND (m.claimed_until IS NULL OR m.claimed_until < now())
              AND pystatus._alert_in_turn(m.id, m.channel, m.service_name, m.services::text[])
            ORDER BY m.next_attempt_at, m.id
            LIMIT greatest(0, pystatus._alert_sends_per_channel() - sending.n)
            FOR UPDATE OF m SKIP LOCKED) AS d
        WHERE claim_alert_messages.message_id IS NULL
          AND sending.n < pystatus._alert_sends_per_channel()
        ORDER BY d.next_attempt_at, d.id
        LIMIT claim_alert_messages.max_messages
    ), claimed AS (
        UPDATE pystatus.alert_messages AS m
        SET attempts = m.attempts + 1, claimed_until = now() + claim_alert_messages.lease
        WHERE m.id IN (SELECT one.id FROM one UNION ALL SELECT due.id FROM due)
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
    'than a send may take), logging the attempt; returns each with its channel. A channel''s '
    'messages about one service go in order, and at most _alert_sends_per_channel() of a channel''s '
    'messages are out at once. Report each outcome with pystatus.finish_alert_attempt().';

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
        error = left(pystatus.clean_text(finish_alert_attempt.error), 2000)
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
    'Records how an attempt ended (error NULL: delivered; an error is stored cleaned, as the receiver '
    'may have written it). A failed message is retried with '
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
