-- Alerts, delivering: a worker claims the messages due, sends them and reports
-- each attempt; a message is sent at least once, in order per service and
-- channel, and retried with backoff until it is given up. Deciding them is
-- 76_alert_decisions.sql.

SET LOCAL search_path = pg_catalog, pg_temp;

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
