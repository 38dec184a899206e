-- Tables, types and pg_partman's configuration: everything that holds state.
--
-- This file is the readable definition of the current shape. `pystatus
-- migrate` never runs it: sql/migrations/ creates and changes these objects
-- (the first migration also adopts a seed install's table in place), and a
-- test proves that the migrations build exactly what this file builds. To
-- change a table, change it here AND add a migration.
--
-- Settings read here (custom settings, set by `pystatus migrate --...`):
--   pystatus.partition_interval  default '1 month'
--   pystatus.retention           default '60 days'
--   pystatus.premake             default 4          partitions made ahead of now

SET LOCAL search_path = pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- Current status and its history
------------------------------------------------------------------------------

-- Updated in place at every heartbeat: the only index is the primary key, on a
-- column that never changes, and half of each page stays free so updates are
-- HOT (the new row version fits on the same page, no index entry is written).
CREATE TABLE public.system_status (
    service_name varchar(64) PRIMARY KEY
        CONSTRAINT system_status_service_name_valid CHECK (pystatus.is_valid_service_name(service_name)),
    status varchar(16) NOT NULL
        CONSTRAINT system_status_status_valid CHECK (pystatus.is_status(status)),
    current_task text
        CONSTRAINT system_status_current_task_size CHECK (octet_length(current_task) <= 4096),
    last_heartbeat timestamptz NOT NULL
        -- The window around the server's clock is the copy trigger's (30_write.sql):
        -- a constraint cannot depend on the clock.
        CONSTRAINT system_status_last_heartbeat_finite CHECK (isfinite(last_heartbeat)),
    updated_at timestamptz NOT NULL DEFAULT now(),
    latency_ms double precision
        CONSTRAINT system_status_latency_ms_valid CHECK (latency_ms >= 0 AND latency_ms < 'Infinity')
) WITH (fillfactor = 50);
COMMENT ON TABLE public.system_status IS
    'Current status, one row per service, updated in place by pystatus.heartbeat(). '
    'Every write is copied to system_status_history by a trigger.';
COMMENT ON COLUMN public.system_status.status IS
    'ok, degraded, down, starting, stopping or maintenance as reported; stale when pystatus found the service silent.';
COMMENT ON COLUMN public.system_status.current_task IS 'What the service says it is doing; at most 4096 bytes.';
COMMENT ON COLUMN public.system_status.last_heartbeat IS
    'When the latest heartbeat was recorded, by the database server''s clock.';
COMMENT ON COLUMN public.system_status.latency_ms IS
    'Optional measure sent with the heartbeat (e.g. a request latency), for trends; NULL when not sent.';
COMMENT ON COLUMN public.system_status.updated_at IS
    'When this row was last written (differs from last_heartbeat for backfilled records).';

-- A row costs about 68 bytes with its index (docs/performance.md): no row
-- identity (nothing reads one, and a sequence costs every insert), no copy of
-- the time except where it differs, and an index of each service's hours.
CREATE TABLE public.system_status_history (
    heartbeat_timestamp timestamptz NOT NULL,
    created_at timestamptz,
    service_name varchar(64) NOT NULL,
    status varchar(16) NOT NULL,
    current_task text,
    latency_ms double precision
) PARTITION BY RANGE (heartbeat_timestamp);

-- One key per service and hour, deduplicated (10_rules.sql, _history_hour()):
-- an index on (service_name, heartbeat_timestamp) took 50 bytes a row, its
-- pages half empty, because each service inserts at its own place in it.
CREATE INDEX system_status_history_service_hour
    ON public.system_status_history (service_name, pystatus._history_hour(heartbeat_timestamp));

-- And by time, per block range (BRIN): rows arrive in time order, so the
-- fleet's last minutes are the last pages of the newest partition, read at once
-- rather than through each service's hour. A few hundred kilobytes a month.
-- On the minute (10_rules.sql, _history_minute()): only the fleet's reads by
-- time name it, so one service's reads never add a scan of every range's summary.
CREATE INDEX system_status_history_time
    ON public.system_status_history USING brin (pystatus._history_minute(heartbeat_timestamp))
    WITH (pages_per_range = 32, autosummarize = on);

COMMENT ON TABLE public.system_status_history IS
    'Every status write, one row each, range-partitioned by heartbeat_timestamp; '
    'pg_partman creates the partitions and drops those past retention.';
COMMENT ON COLUMN public.system_status_history.heartbeat_timestamp IS
    'When the heartbeat happened (the partition key).';
COMMENT ON COLUMN public.system_status_history.created_at IS
    'When the row was written, where that differs from heartbeat_timestamp: backfilled records and '
    'the sweeper''s stale rows. NULL when the row was written at heartbeat_timestamp.';
COMMENT ON INDEX public.system_status_history_service_hour IS
    'Each service''s rows by UTC hour: queries bound their scans with pystatus._history_hour().';
COMMENT ON INDEX public.system_status_history_time IS
    'Rows by UTC minute (_history_minute()), per range of 32 pages (BRIN): the fleet''s newest rows, '
    'read at once. Summarized '
    'as each range fills (autosummarize), rows being written in time order.';

------------------------------------------------------------------------------
-- Partitions: pg_partman premakes them and drops expired ones. Works with
-- pg_partman 4.x ('native') and 5.x ('range').
------------------------------------------------------------------------------

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_partman') THEN
        -- An existing schema is used only if this role or a superuser owns it:
        -- a schema's owner can replace the functions in it.
        IF to_regnamespace('partman') IS NULL THEN
            CREATE SCHEMA partman;
        ELSIF NOT (SELECT r.rolsuper OR r.rolname = current_user FROM pg_namespace AS n
                   JOIN pg_roles AS r ON r.oid = n.nspowner WHERE n.nspname = 'partman') THEN
            RAISE EXCEPTION 'schema partman belongs to another role: pg_partman is not installed into it'
                USING ERRCODE = 'PS010';
        END IF;
        CREATE EXTENSION pg_partman SCHEMA partman;
    END IF;
EXCEPTION
    WHEN insufficient_privilege OR undefined_file THEN
        RAISE EXCEPTION 'pg_partman is not installed in database % and this role cannot install it: %',
            current_database(), SQLERRM
            USING ERRCODE = 'PS010',
                  HINT = 'Install the package (Debian: postgresql-<major>-partman), then as a superuser: '
                         'CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman;';
END;
$$;

DO $$
DECLARE
    v_schema name := (SELECT extnamespace::regnamespace::name FROM pg_extension WHERE extname = 'pg_partman');
    v_major int := (SELECT split_part(extversion, '.', 1)::int FROM pg_extension WHERE extname = 'pg_partman');
    v_interval interval := coalesce(nullif(current_setting('pystatus.partition_interval', true), ''), '1 month');
    v_retention interval := coalesce(nullif(current_setting('pystatus.retention', true), ''), '60 days');
    v_premake int := coalesce(nullif(current_setting('pystatus.premake', true), ''), '4');
BEGIN
    -- Calendar units only: partitions must line up with pg_partman's own
    -- alignment (and hourly ones would make 1,440 tables for 60 days).
    IF v_interval NOT IN (interval '1 day', interval '1 week', interval '1 month') THEN
        RAISE EXCEPTION 'invalid pystatus.partition_interval %: must be 1 day, 1 week or 1 month', v_interval
            USING ERRCODE = 'PS005';
    END IF;
    IF v_retention <= interval '0' THEN
        RAISE EXCEPTION 'invalid pystatus.retention %: must be positive', v_retention
            USING ERRCODE = 'PS005';
    END IF;
    IF v_premake < 1 THEN
        RAISE EXCEPTION 'invalid pystatus.premake %: must be at least 1', v_premake
            USING ERRCODE = 'PS005';
    END IF;
    -- Partition bounds come from date_trunc() in the session time zone: fix it
    -- so bounds are the same whoever runs this.
    PERFORM set_config('TimeZone', 'UTC', true);
    EXECUTE format(
        'SELECT %I.create_parent(p_parent_table := %L, p_control := %L, p_type := %L, '
        'p_interval := %L, p_premake := %s, p_start_partition := %L, p_jobmon := false)',
        v_schema, 'public.system_status_history', 'heartbeat_timestamp',
        CASE WHEN v_major >= 5 THEN 'range' ELSE 'native' END,
        v_interval::text, v_premake, (now() - v_retention)::text);
    -- infinite_time_partitions: premake from the clock, not from the newest row,
    -- so partitions exist ahead even while no heartbeat arrives.
    EXECUTE format(
        'UPDATE %I.part_config SET retention = %L, retention_keep_table = false, '
        'infinite_time_partitions = true WHERE parent_table = %L',
        v_schema, v_retention::text, 'public.system_status_history');
END;
$$;

------------------------------------------------------------------------------
-- What services promise
------------------------------------------------------------------------------

CREATE TABLE pystatus.service_expectations (
    service_name varchar(64) PRIMARY KEY
        CONSTRAINT service_expectations_service_name_valid
        CHECK (pystatus.is_valid_service_name(service_name)),
    expected_interval interval NOT NULL CHECK (expected_interval > interval '0'),
    grace interval NOT NULL CHECK (grace >= interval '0')
);
COMMENT ON TABLE pystatus.service_expectations IS
    'How often each service promises to heartbeat, and how much lateness to forgive. Services '
    'without a row get the defaults of pystatus.live_status (60 s interval, 60 s grace).';

------------------------------------------------------------------------------
-- Rollups: per service per hour and per day, kept longer than raw history
------------------------------------------------------------------------------

CREATE TABLE pystatus.rollup_hourly (
    service_name varchar(64) NOT NULL,
    bucket timestamptz NOT NULL,
    up_us bigint NOT NULL,
    down_us bigint NOT NULL,
    maintenance_us bigint NOT NULL,
    heartbeats integer NOT NULL,
    latency_count integer NOT NULL,
    latency_avg double precision,
    latency_p50 double precision,
    latency_p95 double precision,
    latency_max double precision,
    -- Running totals (0009): what the service's earlier hours add up to, so
    -- that any run of whole hours is two rows a service, its first and last.
    up_us_before bigint NOT NULL,
    down_us_before bigint NOT NULL,
    maintenance_us_before bigint NOT NULL,
    PRIMARY KEY (service_name, bucket)
);
CREATE INDEX rollup_hourly_bucket ON pystatus.rollup_hourly (bucket);
COMMENT ON TABLE pystatus.rollup_hourly IS
    'Per service per UTC hour: microseconds up, down and in maintenance (the rest of the hour is '
    'no data), heartbeats received, and the latency measure''s count/avg/p50/p95/max. '
    'Maintained by pystatus.refresh_rollups(); equal to the same figures computed from raw history.';
COMMENT ON COLUMN pystatus.rollup_hourly.up_us_before IS
    'up_us of the service''s earlier rows, added up (down_us_before, maintenance_us_before alike): '
    'the hours [a, b) of a service add up to the last row''s before and own values less the first '
    'row''s before. Rows deleted past retention leave the later ones as they are.';

CREATE TABLE pystatus.rollup_daily (
    service_name varchar(64) NOT NULL,
    bucket timestamptz NOT NULL,
    up_us bigint NOT NULL,
    down_us bigint NOT NULL,
    maintenance_us bigint NOT NULL,
    heartbeats integer NOT NULL,
    latency_count integer NOT NULL,
    latency_avg double precision,
    latency_p50 double precision,
    latency_p95 double precision,
    latency_max double precision,
    PRIMARY KEY (service_name, bucket)
);
CREATE INDEX rollup_daily_bucket_idx ON pystatus.rollup_daily (bucket);
COMMENT ON TABLE pystatus.rollup_daily IS
    'pystatus.rollup_hourly per UTC day (percentiles computed over the day''s raw rows).';

-- Hours that were not wholly up, drawn out: rollup_hourly's sums say how long
-- a service was down, in maintenance or without data, these say when. An
-- incident is read from them, and the part of an hour a window starts inside;
-- an hour wholly up has no row, and nearly all hours are.
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

-- The hour being lived through, so far: what answers over a window ending now
-- would otherwise read from raw history, up to an hour of every service's rows,
-- and the row a raw reading after it starts from.
CREATE TABLE pystatus.rollup_current (
    service_name varchar(64) PRIMARY KEY,
    up_us bigint NOT NULL,
    down_us bigint NOT NULL,
    maintenance_us bigint NOT NULL,
    down tstzmultirange NOT NULL DEFAULT '{}',
    silent tstzmultirange NOT NULL DEFAULT '{}',
    last_at timestamptz,
    last_status varchar(16)
);
COMMENT ON TABLE pystatus.rollup_current IS
    'Per service, for [rollup_state.current_from, rollup_state.current_until), the part of the '
    'current hour already rolled up: microseconds up, down and in maintenance; when it was down '
    '(silent: the part of down that was silence past the deadline); and the service''s newest '
    'history row before current_until (last_at, last_status; NULL until found), the row in force '
    'there, kept from hour to hour. Extended every minute by pystatus.refresh_rollups(); its sums '
    'start afresh when the hour is rolled up.';

CREATE TABLE pystatus.rollup_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    rolled_until timestamptz NOT NULL,
    retention interval NOT NULL DEFAULT interval '400 days' CHECK (retention > interval '0'),
    spans_from timestamptz NOT NULL,
    current_from timestamptz NOT NULL,
    current_until timestamptz NOT NULL
);
COMMENT ON TABLE pystatus.rollup_state IS
    'rolled_until: rollups hold every hour before it (an hour is rolled up 5 minutes after it '
    'ends); retention: how long rollups are kept (default 400 days, longer than raw history); '
    'spans_from: the first hour with rollup_spans (-infinity when every rollup has them; on an '
    'installation upgraded to 0.3.0, the hours rolled up before have none); current_from, '
    'current_until: what rollup_current holds (used while current_from = rolled_until).';
INSERT INTO pystatus.rollup_state (rolled_until, spans_from, current_from, current_until)
SELECT h.hour, '-infinity', h.hour, h.hour
FROM (SELECT date_bin('1 hour', coalesce(min(heartbeat_timestamp), now()), pystatus._bucket_origin()) AS hour
      FROM public.system_status_history) AS h;

CREATE TABLE pystatus.rollup_dirty (
    service_name varchar(64) NOT NULL,
    since timestamptz NOT NULL
);
COMMENT ON TABLE pystatus.rollup_dirty IS
    'Services whose rollups must be recomputed from since: history rows written late (backfills) '
    'or changed expectations. Emptied by pystatus.refresh_rollups().';

CREATE TYPE pystatus.uptime_report AS (
    service_name text,
    since timestamptz,
    until timestamptz,
    up_seconds numeric,
    down_seconds numeric,
    maintenance_seconds numeric,
    no_data_seconds numeric,
    uptime double precision
);
COMMENT ON TYPE pystatus.uptime_report IS
    'Uptime over [since, until): seconds up, down, in maintenance and without data (they add up '
    'to the window), and uptime = up / (up + down), NULL when the service was never up or down.';

------------------------------------------------------------------------------
-- Which login may report which services (opt-in; 90_roles.sql)
------------------------------------------------------------------------------

CREATE TABLE pystatus.service_logins (
    login name NOT NULL,
    service_pattern text NOT NULL CHECK (service_pattern <> ''),
    -- * is the only wildcard: service names often hold _ and %, which LIKE
    -- would take for wildcards too.
    like_pattern text NOT NULL GENERATED ALWAYS AS (
        replace(replace(replace(replace(service_pattern, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%')) STORED,
    PRIMARY KEY (login, service_pattern)
);
COMMENT ON TABLE pystatus.service_logins IS
    'Which services each login may heartbeat for: a service name, or a pattern where * stands for any '
    'characters (billing-*). Empty: any login granted pystatus_writer may report any service. Once it '
    'has a row, a login may only report the services its rows match; the owner (and roles that are '
    'members of it) and superusers are not restricted.';
COMMENT ON COLUMN pystatus.service_logins.like_pattern IS
    'service_pattern as a LIKE pattern: * becomes %, and \, % and _ match themselves.';

------------------------------------------------------------------------------
-- Status changes and alerts (75_alert_rules.sql to 77_alert_delivery.sql), maintenance windows (45_windows.sql)
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
    sent_at timestamptz,
    services varchar(64)[]
);
CREATE INDEX alert_messages_created ON pystatus.alert_messages (created_at);
COMMENT ON TABLE pystatus.alert_messages IS
    'Messages to deliver, at least once, each with its idempotency key (sent in every copy): pending '
    'until a worker delivers it (sent) or gives up (failed). A worker holds a message it is sending '
    'until claimed_until; after that (the worker died) another sends it again.';
COMMENT ON COLUMN pystatus.alert_messages.services IS
    'A summary''s services (service_name NULL): one message for many services of a channel that '
    'alerted at once. NULL for a message about one service, and for a test.';
-- The pending queue, read by index only: a claim reads about what it takes,
-- however many messages wait (a storm queues thousands).
CREATE INDEX alert_messages_due ON pystatus.alert_messages (channel, next_attempt_at, id)
    WHERE state = 'pending';
COMMENT ON INDEX pystatus.alert_messages_due IS
    'Each channel''s pending messages in the order they are due: what claim_alert_messages() takes.';
CREATE INDEX alert_messages_pending_service ON pystatus.alert_messages (channel, service_name, id)
    WHERE state = 'pending';
COMMENT ON INDEX pystatus.alert_messages_pending_service IS
    'Each channel''s pending messages by service (summaries under NULL): whether an earlier one about '
    'the same service is still pending (_alert_in_turn()).';
CREATE INDEX alert_messages_sending ON pystatus.alert_messages (channel)
    WHERE state = 'pending' AND claimed_until IS NOT NULL;
COMMENT ON INDEX pystatus.alert_messages_sending IS
    'The messages claimed and not yet reported: how many of a channel''s are being sent.';

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
    hourly_uptime double precision[],
    PRIMARY KEY (service_name, time_window)
);
COMMENT ON TABLE pystatus.uptime_windows IS
    'Per service, microseconds up and down over the last 24 rolled-up hours (1d) and the last 7 and '
    '30 whole rolled-up days: what a Prometheus scrape reads (pystatus.metrics()), recomputed by '
    'pystatus.refresh_rollups() whenever the rollups change.';
COMMENT ON COLUMN pystatus.uptime_windows.hourly_uptime IS
    'In the 1d row: the uptime of each of its 24 hours, oldest first (NULL where no data), the '
    'strip of pystatus.service_overview(); NULL in the others.';

CREATE TABLE pystatus.alerts_progress (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    evaluated_until timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pystatus.alerts_progress IS
    'Until when pystatus.evaluate_alerts() has recorded the edges of maintenance windows.';
INSERT INTO pystatus.alerts_progress DEFAULT VALUES;

------------------------------------------------------------------------------
-- Ping tokens (87_ping.sql)
------------------------------------------------------------------------------

CREATE TABLE pystatus.ping_tokens (
    token_hash bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    token_prefix text NOT NULL UNIQUE CHECK (token_prefix ~ '^ps_[0-9a-f]{8}$'),
    service_name varchar(64) NOT NULL
        CONSTRAINT ping_tokens_service_name_valid CHECK (pystatus.is_valid_service_name(service_name)),
    note text CHECK (octet_length(note) <= 1024),
    created_by name NOT NULL DEFAULT session_user,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ping_tokens_service ON pystatus.ping_tokens (service_name);
COMMENT ON TABLE pystatus.ping_tokens IS
    'The secrets of the HTTP ping endpoint (pystatus ingest): each lets whoever holds it report the '
    'status of one service. Only the SHA-256 of a token is kept; token_prefix, its first characters, '
    'names it in lists. Made by add_ping_token(), removed by remove_ping_token().';

------------------------------------------------------------------------------
-- The installation itself
------------------------------------------------------------------------------

-- pystatus's own serialization: a job locks its row (FOR UPDATE SKIP LOCKED,
-- or waits for it). Only pystatus's owner may lock these rows, where an
-- advisory lock is open to any login that can connect.
CREATE TABLE pystatus.job_locks (
    job text PRIMARY KEY,
    period interval CHECK (period > interval '0'),
    last_run timestamptz
);
COMMENT ON TABLE pystatus.job_locks IS
    'One row per job that runs one at a time (maintain, sweep, refresh_rollups, evaluate_alerts, '
    'migrate, service_logins): a run locks its row for its transaction. period: how often it is '
    'due (NULL for those run on demand), which `pystatus check` compares with how long a holder '
    'has kept it; last_run: when the newest committed run started.';
INSERT INTO pystatus.job_locks (job, period) VALUES
    ('maintain', interval '1 hour'), ('sweep', interval '1 minute'),
    ('refresh_rollups', interval '1 minute'), ('evaluate_alerts', interval '1 minute'),
    ('migrate', NULL), ('service_logins', NULL);

CREATE TABLE pystatus.limits (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    max_services integer NOT NULL DEFAULT 20000 CHECK (max_services > 0),
    max_batch integer NOT NULL DEFAULT 10000 CHECK (max_batch > 0),
    max_metric_services integer NOT NULL DEFAULT 10000 CHECK (max_metric_services > 0)
);
COMMENT ON TABLE pystatus.limits IS
    'Bounds a writer cannot pass: how many services system_status may hold (a new service past it '
    'is refused, PS009) and how many heartbeats one heartbeat_many() call may carry; and how many '
    'services a Prometheus scrape has series of (the rest are counted). Set with '
    'pystatus.set_limits().';
INSERT INTO pystatus.limits DEFAULT VALUES;

CREATE TABLE pystatus.definitions_applied (
    version text NOT NULL,
    sources_sha256 text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pystatus.definitions_applied IS
    'Each time `pystatus migrate` (re-)applied the definitions of sql/schema/: the pystatus version, '
    'a checksum of those files, and when. The newest row says which definitions are installed.';
