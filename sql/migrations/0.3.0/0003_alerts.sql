-- Alerts (0.3.0): status events written in the same transaction as the
-- change, alert channels, rules, their open alerts, the messages to deliver
-- and the delivery log, maintenance windows, and the uptime windows that
-- Prometheus scrapes read.
-- depends: 0001_baseline

SET LOCAL search_path = pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- Status changes and alerts (75_alerts.sql), maintenance windows (45_windows.sql)
------------------------------------------------------------------------------

CREATE TABLE pystatus.status_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_name varchar(64) NOT NULL,
    at timestamptz NOT NULL,
    from_status varchar(16),
    to_status varchar(16) NOT NULL,
    cause text NOT NULL CHECK (cause IN ('reported', 'silence', 'window started', 'window ended')),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX status_events_service ON pystatus.status_events (service_name, id);
CREATE INDEX status_events_recorded ON pystatus.status_events (recorded_at);
COMMENT ON TABLE pystatus.status_events IS
    'Every change of a service''s effective status, written in the same transaction as the change: '
    'a reported status that differs from the previous one (cause reported; from_status NULL for a '
    'service''s first heartbeat), stale written by the sweeper (silence, at the deadline), and the '
    'edges of maintenance windows (window started/ended). The alerts'' outbox; kept as long as history.';

CREATE TABLE pystatus.alert_channels (
    name varchar(64) PRIMARY KEY
        CONSTRAINT alert_channels_name_valid CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    kind text NOT NULL CHECK (kind IN ('webhook', 'email', 'apprise')),
    target text NOT NULL CHECK (target <> ''),
    options jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pystatus.alert_channels IS
    'Where alerts go. webhook: target is the URL, options secret (HMAC key) and timeout; email: '
    'target is the recipients, options the SMTP server (host, port, starttls, ssl, username, password, '
    'sender); apprise: target is one or more Apprise URLs. target and options may hold secrets: only '
    'the owner and pystatus_alerter read them (pystatus.alert_channel_list() shows them masked).';

CREATE TABLE pystatus.alert_rules (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_pattern text NOT NULL CHECK (service_pattern <> ''),
    like_pattern text NOT NULL GENERATED ALWAYS AS (
        replace(replace(replace(replace(service_pattern, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%')) STORED,
    channel varchar(64) NOT NULL REFERENCES pystatus.alert_channels ON DELETE CASCADE,
    down_for interval NOT NULL DEFAULT interval '0' CHECK (down_for >= interval '0'),
    down_reports integer NOT NULL DEFAULT 1 CHECK (down_reports >= 1),
    up_for interval NOT NULL DEFAULT interval '0' CHECK (up_for >= interval '0'),
    remind_every interval CHECK (remind_every >= interval '1 minute'),
    UNIQUE (service_pattern, channel)
);
COMMENT ON TABLE pystatus.alert_rules IS
    'Which services (a name, or a pattern where * stands for any characters) alert which channel, '
    'and when: down (or stale) for at least down_for and for down_reports consecutive reports (silence '
    'counts as enough), recovered once out of down for up_for, reminders every remind_every while '
    'still down (NULL: none).';

CREATE TABLE pystatus.alert_state (
    rule_id bigint NOT NULL REFERENCES pystatus.alert_rules ON DELETE CASCADE,
    service_name varchar(64) NOT NULL,
    down_since timestamptz NOT NULL,
    alerted_at timestamptz NOT NULL,
    reminded_at timestamptz,
    reminders integer NOT NULL DEFAULT 0,
    PRIMARY KEY (rule_id, service_name)
);
COMMENT ON TABLE pystatus.alert_state IS
    'The open alerts: a row from the down message of a rule and service until its recovery message.';

CREATE TABLE pystatus.alert_messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key uuid NOT NULL UNIQUE,
    channel varchar(64) NOT NULL REFERENCES pystatus.alert_channels ON DELETE CASCADE,
    rule_id bigint REFERENCES pystatus.alert_rules ON DELETE SET NULL,
    service_name varchar(64),
    kind text NOT NULL CHECK (kind IN ('down', 'reminder', 'recovered', 'test')),
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_until timestamptz,
    sent_at timestamptz
);
CREATE INDEX alert_messages_due ON pystatus.alert_messages (next_attempt_at) WHERE state = 'pending';
CREATE INDEX alert_messages_created ON pystatus.alert_messages (created_at);
COMMENT ON TABLE pystatus.alert_messages IS
    'Messages to deliver, at least once, each with its idempotency key (sent in every copy): pending '
    'until a worker delivers it (sent) or gives up (failed). A worker holds a message it is sending '
    'until claimed_until; after that (the worker died) another sends it again.';

CREATE TABLE pystatus.alert_attempts (
    message_id bigint NOT NULL REFERENCES pystatus.alert_messages ON DELETE CASCADE,
    attempt integer NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    worker text NOT NULL,
    outcome text CHECK (outcome IN ('sent', 'failed')),
    error text,
    PRIMARY KEY (message_id, attempt)
);
COMMENT ON TABLE pystatus.alert_attempts IS
    'The delivery log: every attempt to send a message, with its worker, outcome and error. An '
    'attempt with no outcome was cut short (its worker died).';

CREATE TABLE pystatus.maintenance_windows (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_pattern text NOT NULL CHECK (service_pattern <> ''),
    like_pattern text NOT NULL GENERATED ALWAYS AS (
        replace(replace(replace(replace(service_pattern, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%')) STORED,
    kind text NOT NULL DEFAULT 'maintenance' CHECK (kind IN ('maintenance', 'snooze')),
    starts timestamptz NOT NULL CHECK (isfinite(starts)),
    ends timestamptz NOT NULL CHECK (isfinite(ends)),
    every interval CHECK (every > interval '0'),
    repeat_until timestamptz,
    time_zone text NOT NULL DEFAULT 'UTC',
    reason text CHECK (octet_length(reason) <= 1024),
    created_by name NOT NULL DEFAULT session_user,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends > starts),
    CHECK (every IS NULL OR ends - starts <= every),
    CHECK (every IS NOT NULL OR repeat_until IS NULL)
);
COMMENT ON TABLE pystatus.maintenance_windows IS
    'Planned quiet times. maintenance: inside a window a service''s down time (reported down or '
    'silence) counts as maintenance in every answer, and its alerts are muted. snooze: alerts muted '
    'only. Recurring when every is set: the window repeats every that long in time_zone''s wall '
    'clock (a 02:00 window stays at 02:00 across daylight saving), until repeat_until (NULL: forever).';

CREATE TABLE pystatus.uptime_windows (
    service_name varchar(64) NOT NULL,
    time_window text NOT NULL CHECK (time_window IN ('1d', '7d', '30d')),
    up_us bigint NOT NULL,
    down_us bigint NOT NULL,
    PRIMARY KEY (service_name, time_window)
);
COMMENT ON TABLE pystatus.uptime_windows IS
    'Per service, microseconds up and down over the last 24 rolled-up hours (1d) and the last 7 and '
    '30 whole rolled-up days: what a Prometheus scrape reads (pystatus.metrics()), recomputed by '
    'pystatus.refresh_rollups() whenever the rollups change.';

CREATE TABLE pystatus.alerts_progress (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    evaluated_until timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pystatus.alerts_progress IS
    'Until when pystatus.evaluate_alerts() has recorded the edges of maintenance windows.';
INSERT INTO pystatus.alerts_progress DEFAULT VALUES;
