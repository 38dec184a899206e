-- pystatus's jobs serialize on rows of a table of its own instead of advisory
-- locks, which any login that can connect may take (and so silence alerting,
-- maintenance and rollups); and the bounds on what one writer may add.
-- depends: 0008_history_time_index
--
-- Two new tables, nothing rewritten: it takes no lock a heartbeat waits on.

SET LOCAL search_path = pg_catalog, pg_temp;

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
