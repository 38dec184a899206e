-- Alerts, deciding: from events, rules and windows to the messages due
-- (evaluate_alerts(), which the alert worker and a pg_cron job run). Channels
-- and rules are in 75_alert_rules.sql, delivery in 77_alert_delivery.sql.

SET LOCAL search_path = pg_catalog, pg_temp;

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
