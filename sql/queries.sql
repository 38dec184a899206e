-- Named queries used by the Python client and the CLI. Each starts with
-- "-- name --" and a one-line description; most are a single call into a SQL
-- function of the pystatus schema, where the logic lives.

-- heartbeat --
-- Records a heartbeat at the server's clock; returns the recorded time.
SELECT pystatus.heartbeat(%(service_name)s::text, %(status)s::text, %(current_task)s::text)

-- record_heartbeat --
-- Records a heartbeat at an explicit past time; true when it became the current status.
SELECT pystatus.record_heartbeat(%(service_name)s::text, %(status)s::text, %(current_task)s::text, %(at)s::timestamptz)

-- maintain --
-- Partition maintenance; returns what was created and dropped.
SELECT pystatus.maintain()

-- move_default_rows --
-- Moves rows out of the default partition into partitions of their own.
SELECT pystatus.move_default_rows()

-- current_status --
-- Every service's current row, as the dashboard reads it.
SELECT service_name, status, current_task, last_heartbeat, updated_at
FROM public.system_status ORDER BY service_name

-- history --
-- One service's history over the last %(since)s (an interval such as '7 days' or '12h').
SELECT heartbeat_timestamp, status, current_task
FROM pystatus.history(%(service_name)s::text, now() - %(since)s::interval)

-- maintenance_job --
-- The pg_cron job (name, schedule, command, database) that maintains this database.
SELECT job_name, schedule, command, database FROM pystatus.maintenance_job()

-- setup_report --
-- What the installation looks like, and what is left for the DBA to do.
SELECT item, value, todo FROM pystatus.setup_report()

-- schedule_in_cron_database --
-- Run in pg_cron's database: registers (or updates) the maintenance job of another database.
SELECT cron.schedule_in_database(%(job_name)s::text, %(schedule)s::text, %(command)s::text, %(database)s::text)

-- unschedule_in_cron_database --
-- Run in pg_cron's database: removes another database's maintenance job.
SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = %(job_name)s::text

-- schedule_maintenance_here --
-- Schedules maintenance with pg_cron in this database; false when pg_cron is not here.
SELECT pystatus.schedule_maintenance()
