-- Named queries, run only by pystatus/client.py (writes), pystatus/answers.py
-- (reads) and pystatus/admin.py (operations). Each starts with "-- name --" and
-- a one-line description; most are a single call into a SQL function of the
-- pystatus schema, where the logic lives.

-- heartbeat --
-- Records a heartbeat at the server's clock; returns the recorded time.
SELECT pystatus.heartbeat(%(service_name)s::text, %(status)s::text, %(current_task)s::text, %(latency_ms)s::float8)

-- record_heartbeat --
-- Records a heartbeat at an explicit past time; true when it became the current status.
SELECT pystatus.record_heartbeat(%(service_name)s::text, %(status)s::text, %(current_task)s::text, %(at)s::timestamptz, %(latency_ms)s::float8)

-- maintain --
-- Partition maintenance; returns what was created and dropped.
SELECT pystatus.maintain()

-- move_default_rows --
-- Moves rows out of the default partition into partitions of their own.
SELECT pystatus.move_default_rows()

-- history --
-- One service's heartbeats in a window, newest first. The window is either since
-- (a time) or window (text: the last '12h'); with known, an unknown service is an
-- error naming close ones. The other windowed answers take the same parameters.
SELECT heartbeat_timestamp, status, current_task
FROM pystatus.history(pystatus.known_service(%(service_name)s::text, %(known)s::boolean),
                      pystatus.window_start(%(since)s::timestamptz, %(window)s::text, %(label)s::text),
                      coalesce(%(until)s::timestamptz, now()))

-- maintenance_jobs --
-- The pg_cron jobs (name, schedule, command, database) that keep this database in shape.
SELECT job_name, schedule, command, database FROM pystatus.maintenance_jobs()

-- setup_report --
-- What the installation looks like, and what is left for the DBA to do.
SELECT item, value, todo FROM pystatus.setup_report()

-- schedule_in_cron_database --
-- Run in pg_cron's database: registers (or updates) the maintenance job of another database.
SELECT cron.schedule_in_database(%(job_name)s::text, %(schedule)s::text, %(command)s::text, %(database)s::text)

-- unschedule_in_cron_database --
-- Run in pg_cron's database: removes another database's maintenance job; returns how many (0 or 1).
SELECT count(cron.unschedule(jobid)) FROM cron.job WHERE jobname = %(job_name)s::text AND database = %(database)s::text

-- schedule_maintenance_here --
-- Schedules maintenance with pg_cron in this database; false when pg_cron is not here.
SELECT pystatus.schedule_maintenance()

-- unschedule_maintenance_here --
-- Removes this database's maintenance jobs when pg_cron lives here; returns how many.
SELECT pystatus.unschedule_maintenance()

-- pg_cron_here --
-- Whether this database holds pg_cron's job table (run in the database pg_cron should live in).
SELECT to_regclass('cron.job') IS NOT NULL

-- server_now --
-- The server's clock, which stamps every heartbeat: windows are measured by it.
SELECT now()

-- ago --
-- The server's now() minus an interval in PostgreSQL's syntax ('7 days', '12h').
SELECT now() - %(interval)s::interval

-- live_status --
-- Every service with its effective status (stale once silent past its deadline).
SELECT service_name, effective_status, reported_status, last_heartbeat, seconds_since,
       current_task, latency_ms, expected_interval, grace, stale_after, maintenance_until
FROM pystatus.live_status ORDER BY service_name LIMIT %(max_rows)s::integer OFFSET %(skip_rows)s::integer

-- set_expectations --
-- Sets a service's expected heartbeat interval and grace period.
SELECT pystatus.set_expectations(%(service_name)s::text, %(expected_interval)s::interval, %(grace)s::interval)

-- transitions --
-- Every status change in a window.
SELECT service_name, from_status, to_status, at
FROM pystatus.transitions(pystatus.known_service(%(service_name)s::text, %(known)s::boolean),
                          pystatus.window_start(%(since)s::timestamptz, %(window)s::text, %(label)s::text),
                          coalesce(%(until)s::timestamptz, now()))

-- incidents --
-- Down intervals in a window, with their cause.
SELECT service_name, started, ended, duration, cause
FROM pystatus.incidents(pystatus.known_service(%(service_name)s::text, %(known)s::boolean),
                        pystatus.window_start(%(since)s::timestamptz, %(window)s::text, %(label)s::text),
                        coalesce(%(until)s::timestamptz, now()))

-- uptime --
-- Time-weighted uptime over a window (service NULL: every service).
SELECT * FROM pystatus.uptime(pystatus.known_service(%(service_name)s::text, %(known)s::boolean),
                              pystatus.window_start(%(since)s::timestamptz, %(window)s::text, %(label)s::text),
                              coalesce(%(until)s::timestamptz, now()))

-- uptime_month --
-- Uptime over a calendar month in a time zone.
SELECT * FROM pystatus.uptime_month(pystatus.known_service(%(service_name)s::text, %(known)s::boolean),
                                    %(month)s::date, %(time_zone)s::text)

-- trend --
-- Latency now against a baseline: slower, faster, steady or not enough data.
SELECT * FROM pystatus.trend(pystatus.known_service(%(service_name)s::text, %(known)s::boolean),
                             pystatus.checked_window(%(recent)s::text, %(recent_label)s::text),
                             pystatus.checked_window(%(baseline)s::text, %(baseline_label)s::text))

-- task_durations --
-- How long each current_task lasted.
SELECT service_name, current_task, started, ended, duration
FROM pystatus.task_durations(pystatus.known_service(%(service_name)s::text, %(known)s::boolean),
                             pystatus.window_start(%(since)s::timestamptz, %(window)s::text, %(label)s::text),
                             coalesce(%(until)s::timestamptz, now()))

-- sweep --
-- Marks services silent past their deadline as stale; returns how many.
SELECT pystatus.sweep()

-- refresh_rollups --
-- Brings the hourly and daily rollups up to date.
SELECT pystatus.refresh_rollups()

-- daily_uptime --
-- One service's uptime per UTC day over the last %(days)s days.
SELECT day, up_seconds, down_seconds, maintenance_seconds, no_data_seconds, uptime
FROM pystatus.daily_uptime(%(service_name)s::text, %(days)s::integer)

-- latency_hourly --
-- One service's hourly latency (samples, p50, p95, max) in a window.
SELECT hour, samples, p50, p95, max
FROM pystatus.latency_hourly(%(service_name)s::text, %(since)s::timestamptz, coalesce(%(until)s::timestamptz, now()))

-- heartbeat_many --
-- Records many heartbeats in one call; returns how many services were recorded.
SELECT pystatus.heartbeat_many(%(service_names)s::text[], %(statuses)s::text[], %(current_tasks)s::text[], %(latencies_ms)s::float8[])

-- check --
-- The installation's health, one row per item, ok false for each problem.
SELECT item, ok, detail FROM pystatus.check()

-- check_jobs_in_cron_database --
-- Run in pg_cron's database: another database's jobs and their last runs.
SELECT 'job ' || wanted.name AS item,
       coalesce(j.active AND coalesce(d.status, 'succeeded') = 'succeeded', false) AS ok,
       CASE WHEN j.jobid IS NULL THEN 'not scheduled: run pystatus schedule --cron-dsn ...'
            WHEN NOT j.active THEN 'scheduled but inactive'
            WHEN d.status IS NULL THEN 'scheduled, not run yet'
            ELSE 'last run ' || d.status || coalesce(' at ' || d.end_time, '')
                 || coalesce(': ' || nullif(d.return_message, ''), '')
                 || CASE WHEN d.status = 'failed' THEN ' (see cron.job_run_details; pg_cron connects as the job''s user: that login needs a password in .pgpass or trust in pg_hba.conf for cron.host)' ELSE '' END END AS detail
FROM unnest(%(job_names)s::text[]) AS wanted(name)
LEFT JOIN cron.job AS j ON j.jobname = wanted.name AND j.database = %(database)s::text
LEFT JOIN LATERAL (SELECT r.status, r.end_time, r.return_message FROM cron.job_run_details AS r
                   WHERE r.jobid = j.jobid AND r.status IN ('succeeded', 'failed')
                   ORDER BY r.runid DESC LIMIT 1) AS d ON true
ORDER BY wanted.name

-- allow_service --
-- Lets a login heartbeat for the services a pattern matches (* any characters; turns the restriction on).
SELECT pystatus.allow_service(%(login)s::name, %(service_pattern)s::text)

-- disallow_service --
-- Removes one allowance; true if there was one.
SELECT pystatus.disallow_service(%(login)s::name, %(service_pattern)s::text)

-- service_logins --
-- Which services each login may heartbeat for (empty: no restriction).
SELECT login::text, service_pattern FROM pystatus.service_logins ORDER BY login, service_pattern

-- history_rows --
-- How many rows history holds, counted: what a prompt before dropping it says.
SELECT count(*) FROM public.system_status_history

-- maintenance_scheduler --
-- Where maintenance can be scheduled from: pg_cron here, in another database, or none.
SELECT pystatus.maintenance_scheduler()

-- cron_database --
-- The other database pg_cron lives in, or NULL.
SELECT pystatus.cron_database()

-- cron_database_hidden --
-- Whether pg_cron runs this database's jobs from another database this login may not name.
SELECT NOT c.readable AND NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron')
FROM pystatus._cron_database() AS c

-- install_plan --
-- Before installing: what the connected role may not do itself in this database, and what a superuser runs for it.
WITH me AS (SELECT rolname, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user),
partman AS (SELECT extnamespace::regnamespace::text AS schema FROM pg_extension WHERE extname = 'pg_partman')
SELECT 'create the pystatus schema' AS item,
       me.rolsuper OR has_database_privilege(current_database(), 'CREATE')
           OR EXISTS (SELECT FROM pg_namespace WHERE nspname = 'pystatus' AND nspowner = to_regrole(current_user)) AS ok,
       format('GRANT CREATE ON DATABASE %I TO %I;', current_database(), me.rolname) AS statement, current_database() AS database
FROM me
UNION ALL
SELECT 'create the status tables and the migration records in schema public',
       me.rolsuper OR has_schema_privilege('public', 'CREATE'),
       format('GRANT CREATE ON SCHEMA public TO %I;', me.rolname), current_database()
FROM me
UNION ALL
SELECT 'own the existing public.system_status (its triggers run as its owner)',
       me.rolsuper OR to_regclass('public.system_status') IS NULL
           OR (SELECT relowner = to_regrole(current_user) OR (SELECT rolsuper FROM pg_roles WHERE oid = relowner)
               FROM pg_class WHERE oid = to_regclass('public.system_status')),
       format('ALTER TABLE public.system_status OWNER TO %I;', me.rolname), current_database()
FROM me
UNION ALL
SELECT 'pg_partman installed, usable by this role',
       me.rolsuper OR coalesce(has_schema_privilege(partman.schema, 'USAGE, CREATE')
                               AND has_table_privilege(partman.schema || '.part_config', 'SELECT, INSERT, UPDATE, DELETE'), false),
       CASE WHEN partman.schema IS NULL THEN 'CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman; ' ELSE '' END
       || format('GRANT USAGE, CREATE ON SCHEMA %1$I TO %2$I; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %1$I TO %2$I;',
                 coalesce(partman.schema, 'partman'), me.rolname), current_database()
FROM me LEFT JOIN partman ON true
UNION ALL
SELECT 'role ' || r.name || ', which this role may grant',
       me.rolsuper OR me.rolcreaterole
           OR (to_regrole(r.name) IS NOT NULL AND pg_has_role(r.name, 'USAGE WITH ADMIN OPTION')),
       CASE WHEN to_regrole(r.name) IS NULL THEN format('CREATE ROLE %I NOLOGIN; ', r.name) ELSE '' END
       || format('GRANT %I TO %I WITH ADMIN OPTION;', r.name, me.rolname), current_database()
FROM me, (VALUES ('pystatus_writer'), ('pystatus_reader'), ('pystatus_alerter')) AS r(name)

-- install_plan_cron --
-- Run in pg_cron's database before installing: what the role needs there to register the jobs of %(database)s.
WITH me AS (SELECT rolname, rolsuper FROM pg_roles WHERE rolname = current_user)
SELECT 'pg_cron installed in database ' || current_database() AS item,
       EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') AS ok,
       'CREATE EXTENSION pg_cron;' AS statement, current_database() AS database
FROM me
UNION ALL
SELECT 'register jobs with cron.schedule_in_database',
       me.rolsuper OR coalesce(has_schema_privilege(to_regnamespace('cron')::oid, 'USAGE')
           AND has_function_privilege(
                   to_regprocedure('cron.schedule_in_database(text,text,text,text,text,boolean)')::oid, 'EXECUTE'), false),
       format('GRANT USAGE ON SCHEMA cron TO %%1$I; GRANT EXECUTE ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean) TO %%1$I;', me.rolname), current_database()
FROM me
UNION ALL
SELECT format('pg_cron''s jobs connect to database %%s as this role', %(database)s::text),
       has_database_privilege(%(database)s::text, 'CONNECT'),
       format('GRANT CONNECT ON DATABASE %%I TO %%I;', %(database)s::text, me.rolname), current_database()
FROM me

-- add_alert_channel --
-- Adds or replaces an alert channel.
SELECT pystatus.add_alert_channel(%(name)s::text, %(kind)s::text, %(target)s::text, %(options)s::jsonb)

-- remove_alert_channel --
-- Removes a channel with its rules and messages; false if there was none.
SELECT pystatus.remove_alert_channel(%(name)s::text)

-- alert_channels --
-- The channels, secrets masked.
SELECT name, kind, target, options, rules FROM pystatus.alert_channel_list()

-- add_alert_rule --
-- Adds or replaces the rule of a pattern and channel; returns its id.
SELECT pystatus.add_alert_rule(%(service_pattern)s::text, %(channel)s::text, %(down_for)s::interval, %(down_reports)s::integer, %(up_for)s::interval, %(remind_every)s::interval)

-- remove_alert_rule --
-- Removes a rule; false if there was none.
SELECT pystatus.remove_alert_rule(%(rule_id)s::bigint)

-- alert_rules --
-- The rules, by pattern.
SELECT id, service_pattern, channel, down_for, down_reports, up_for, remind_every
FROM pystatus.alert_rules ORDER BY service_pattern, channel

-- time_zone_for_transaction --
-- Reads times without an offset in this zone until the transaction ends; returns the zone before (PS005 for a bad one).
SELECT pystatus._read_times_in(%(time_zone)s::text)

-- add_maintenance --
-- Plans a maintenance window; returns its id.
SELECT pystatus.add_maintenance(%(service_pattern)s::text, %(starts)s::timestamptz, %(ends)s::timestamptz, %(every)s::interval, %(time_zone)s::text, %(repeat_until)s::timestamptz, %(reason)s::text)

-- snooze --
-- Mutes the alerts of matching services for a while; returns the snooze's id.
SELECT pystatus.snooze(%(service_pattern)s::text, %(duration)s::interval, %(reason)s::text)

-- remove_maintenance --
-- Removes a maintenance window or snooze; false if there was none.
SELECT pystatus.remove_maintenance(%(window_id)s::bigint)

-- maintenance_occurrences --
-- The occurrences of windows and snoozes overlapping a span, in time order.
SELECT window_id, service_pattern, kind, starts, ends, reason
FROM pystatus.maintenance_occurrences(%(since)s::timestamptz, %(until)s::timestamptz)
ORDER BY starts, window_id

-- send_test_alert --
-- Queues a test message for a channel; returns its id.
SELECT pystatus.send_test_alert(%(channel)s::text)

-- alert_log --
-- The alert messages written since a time, newest first.
SELECT message_id, created_at, channel, service_name, kind, state, attempts, sent_at, last_error, idempotency_key, body_text
FROM pystatus.alert_log(%(since)s::timestamptz)

-- alert_sweep --
-- Marks services silent past their deadline stale (the alert worker's sweep, in its own transaction).
SELECT pystatus.alert_sweep()

-- evaluate_alerts --
-- Writes the alert messages that are due; says when to evaluate next.
SELECT messages, next_check FROM pystatus.evaluate_alerts()

-- claim_alert_messages --
-- Takes due messages for this worker for a lease.
SELECT message_id, attempt, idempotency_key, channel, kind, target, options, body
FROM pystatus.claim_alert_messages(%(worker)s::text, %(max_messages)s::integer, %(lease)s::interval, %(message_id)s::bigint)

-- finish_alert_attempt --
-- Records how a delivery attempt ended; returns the message's state.
SELECT pystatus.finish_alert_attempt(%(message_id)s::bigint, %(attempt)s::integer, %(error)s::text)

-- metrics --
-- Every Prometheus sample of a scrape: metric, labels (NULL where none), value.
SELECT metric, service, status, time_window, value FROM pystatus.metrics()

-- ping --
-- Records a heartbeat for the service a ping token belongs to; returns the recorded time.
SELECT pystatus.ping(%(token)s::text, %(status)s::text, %(current_task)s::text, %(latency_ms)s::float8)

-- add_ping_token --
-- Makes a ping token for a service; returns the token, shown only this once.
SELECT pystatus.add_ping_token(%(service_name)s::text, %(note)s::text)

-- remove_ping_token --
-- Revokes a ping token by its prefix; returns its service.
SELECT pystatus.remove_ping_token(%(token_prefix)s::text)

-- ping_token_list --
-- The ping tokens, by prefix.
SELECT token_prefix, service_name, note, created_by, created_at FROM pystatus.ping_token_list()

-- login_owns_pystatus --
-- Whether the connected login is a superuser or a member of pystatus's owner.
SELECT r.rolsuper OR pg_has_role(current_user, n.nspowner, 'MEMBER') FROM pg_roles AS r, pg_namespace AS n WHERE r.rolname = current_user AND n.nspname = 'pystatus'

-- service_overview --
-- Services as the dashboard lists them (a page of them): live status, rolled-up 24 h and 30 d uptime, the last 24 hours.
SELECT service_name, effective_status, reported_status, last_heartbeat, seconds_since, current_task,
       latency_ms, expected_interval, grace, stale_after, maintenance_until, needs_attention,
       uptime_24h, observed_24h_seconds, uptime_30d, observed_30d_seconds, hours_until, hourly_uptime
FROM pystatus.service_overview(%(max_rows)s::integer, %(skip_rows)s::integer, %(attention_only)s::boolean, %(service_name)s::text)

-- fleet_counts --
-- How many services are in each effective status, and whether it needs attention.
SELECT effective_status, needs_attention, services FROM pystatus.fleet_counts()

-- recent_incidents --
-- Every service's incidents over the last %(days)s days, newest first.
SELECT service_name, started, ended, duration, cause
FROM pystatus.recent_incidents(now() - %(days)s::integer * interval '1 day')

-- service_exists --
-- Whether a service has a live status row.
SELECT EXISTS (SELECT FROM public.system_status WHERE service_name = %(service_name)s::text)

-- history_index_pending --
-- History partitions whose part of an index of history is still to build (after 0005, 0008).
SELECT parent_index, schema_name, table_name, index_name, index_state, definition
FROM pystatus._history_indexes_pending()

-- history_index_replaced --
-- Whether the old history index remains while its replacement is complete.
SELECT to_regclass('public.system_status_history_service_time') IS NOT NULL
       AND coalesce((SELECT indisvalid FROM pg_index
                     WHERE indexrelid = to_regclass('public.system_status_history_service_hour')), false)
