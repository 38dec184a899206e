-- Alerts, the first of three files: every change of a service's effective
-- status is an event, written in the same transaction as the change (the
-- outbox, by the copy trigger of 30_write.sql); rules say which services alert
-- which channels and when (anti-flap, reminders): this file. Deciding what to
-- send is 76_alert_decisions.sql; delivering it at least once, by `pystatus
-- alerts run` (pystatus/alerts.py), 77_alert_delivery.sql. The tables are in
-- 20_tables.sql, maintenance windows and snoozes in 45_windows.sql.

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
