-- Roles: pystatus_writer may only heartbeat, pystatus_reader may only read what
-- dashboards and the CLI read; the owner (the role that migrates) keeps the rest.
-- Optionally, each login may heartbeat only for its own service names.
-- depends: 0005_check

-- While this script runs, names resolve in pg_catalog first and objects of other
-- schemas only when qualified (transaction-local: it ends with the script).
SET LOCAL search_path = pg_catalog, pg_temp;

------------------------------------------------------------------------------
-- The roles belong to the whole cluster: made by the first database migrated,
-- reused by the others, and never dropped by a rollback (another database may
-- still grant them). Grants, below, are this database's own.
------------------------------------------------------------------------------

DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['pystatus_writer', 'pystatus_reader'] LOOP
        IF to_regrole(v_role) IS NULL THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
            EXECUTE format('COMMENT ON ROLE %I IS %L', v_role, CASE v_role
                WHEN 'pystatus_writer' THEN
                    'pystatus: may record heartbeats (pystatus.heartbeat, pystatus.heartbeat_many), nothing else. '
                    'Grant it to the logins services use.'
                ELSE
                    'pystatus: may read current status and the answers from history (the functions dashboards '
                    'and the CLI call), nothing else. Grant it to dashboards and monitoring.' END);
        END IF;
    END LOOP;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'role % does not exist and % cannot create it: %', v_role, current_user, SQLERRM
        USING ERRCODE = 'PS010',
              HINT = 'As a superuser (or a role with CREATEROLE): '
                     'CREATE ROLE pystatus_writer NOLOGIN; CREATE ROLE pystatus_reader NOLOGIN; then migrate again.';
END;
$$;

------------------------------------------------------------------------------
-- The heartbeat functions and the copy trigger now run with the owner's rights,
-- and any trigger on the status tables runs with them too. So, as 0001 does for
-- new installations: the tables and pg_partman's schema must belong to this
-- role or to a superuser, and no other role may add triggers to the tables.
------------------------------------------------------------------------------

DO $$
DECLARE
    v_object text;
    v_grantee text;
BEGIN
    SELECT string_agg(o.name || ' belongs to ' || r.rolname, ', ') INTO v_object
    FROM (VALUES ('public.system_status', (SELECT relowner FROM pg_class WHERE oid = 'public.system_status'::regclass)),
                 ('public.system_status_history',
                  (SELECT relowner FROM pg_class WHERE oid = 'public.system_status_history'::regclass)),
                 ('schema ' || pystatus.partman_schema(),
                  (SELECT nspowner FROM pg_namespace WHERE nspname = pystatus.partman_schema()))) AS o(name, owner)
    JOIN pg_roles AS r ON r.oid = o.owner
    WHERE NOT (r.rolsuper OR r.rolname = current_user);
    IF v_object IS NOT NULL THEN
        RAISE EXCEPTION '% (not to %, the role migrating, nor to a superuser)', v_object, current_user
            USING HINT = 'Its owner could add triggers or replace functions that would run with the rights of '
                         'the heartbeat functions. As a superuser: ALTER ... OWNER TO ' || current_user || '.';
    END IF;
    FOR v_object, v_grantee IN
        SELECT DISTINCT t.oid::regclass::text, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(g.rolname) END
        FROM pg_class AS t
        CROSS JOIN LATERAL aclexplode(t.relacl) AS a
        LEFT JOIN pg_roles AS g ON g.oid = a.grantee
        WHERE t.oid IN ('public.system_status'::regclass, 'public.system_status_history'::regclass)
          AND a.privilege_type = 'TRIGGER' AND a.grantee <> t.relowner
    LOOP
        EXECUTE format('REVOKE TRIGGER ON %s FROM %s', v_object, v_grantee);
        RAISE NOTICE 'revoked TRIGGER on % from %: triggers there run with the owner''s rights', v_object, v_grantee;
    END LOOP;
END;
$$;

------------------------------------------------------------------------------
-- Which login may report which services (opt-in)
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

-- Asked by the copy trigger, which runs with the rights of whoever writes
-- system_status: it runs as its owner, so writers need no right on the table.
-- session_user: the login that connected, whatever role it has set since.
CREATE FUNCTION pystatus.may_report(p_service_name text)
RETURNS boolean
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- PL/pgSQL keeps its plans for the session; an SQL function that cannot be
-- inlined is planned again in every transaction (restricted heartbeats ran
-- at 0.70x with it).
AS $$
BEGIN
    RETURN EXISTS (SELECT FROM pystatus.service_logins AS l
                   WHERE l.login = session_user AND p_service_name LIKE l.like_pattern)
        OR pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'pystatus'), 'MEMBER');
END;
$$;
COMMENT ON FUNCTION pystatus.may_report(text) IS
    'Whether the connected login may write a status for this service under pystatus.service_logins '
    '(its own allowances; the owner and superusers always may).';

CREATE FUNCTION pystatus.allow_service(login name, service_pattern text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regrole(quote_ident(allow_service.login)) IS NULL THEN
        RAISE EXCEPTION 'invalid login %: no such role', quote_nullable(allow_service.login)
            USING ERRCODE = 'PS005';
    END IF;
    -- Allowances are matched against session_user, which is always a login.
    IF NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = allow_service.login) THEN
        RAISE EXCEPTION 'invalid login %: the role cannot log in', quote_literal(allow_service.login)
            USING ERRCODE = 'PS005', HINT = 'Allow the logins that services connect as, not the roles they belong to.';
    END IF;
    IF coalesce(allow_service.service_pattern, '') = '' THEN
        RAISE EXCEPTION 'invalid service pattern: it must not be empty'
            USING ERRCODE = 'PS005', HINT = 'A service name, or a pattern with * such as ''billing-*''.';
    END IF;
    INSERT INTO pystatus.service_logins (login, service_pattern)
    VALUES (allow_service.login, allow_service.service_pattern)
    ON CONFLICT DO NOTHING;
END;
$$;
COMMENT ON FUNCTION pystatus.allow_service(name, text) IS
    'Lets a login heartbeat for the services a pattern matches (a name; * for any characters). The first call turns the '
    'restriction on: from then on every other login may report only what it is allowed.';

CREATE FUNCTION pystatus.disallow_service(login name, service_pattern text)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH removed AS (
        DELETE FROM pystatus.service_logins AS l
        WHERE l.login = disallow_service.login AND l.service_pattern = disallow_service.service_pattern
        RETURNING 1)
    SELECT EXISTS (SELECT FROM removed);
$$;
COMMENT ON FUNCTION pystatus.disallow_service(name, text) IS
    'Removes one allowance; true if there was one. Removing the last one lifts the restriction.';

------------------------------------------------------------------------------
-- The heartbeat functions run as their owner, so that a writer needs no right
-- on any table; their search_path is pinned (0001, 0004) so that a caller's
-- objects are never picked up.
------------------------------------------------------------------------------

ALTER FUNCTION pystatus.heartbeat(text, text, text, double precision) SECURITY DEFINER;
ALTER FUNCTION pystatus.heartbeat_many(text[], text[], text[], double precision[]) SECURITY DEFINER;

-- Whether logins are restricted is kept where the copy trigger reads it for
-- free: as the body of a constant function, which PostgreSQL inlines into its
-- plans (replacing it invalidates them). An EXISTS on the table cost every
-- heartbeat about 6 % more instructions, restricted or not.
CREATE FUNCTION pystatus.logins_restricted()
RETURNS boolean
LANGUAGE sql STABLE
RETURN false;
COMMENT ON FUNCTION pystatus.logins_restricted() IS
    'Whether pystatus.service_logins has rows; rewritten by a trigger on that table.';

CREATE FUNCTION pystatus.sync_login_restriction()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_restricted boolean;
BEGIN
    -- One change at a time: two transactions replacing the function at once
    -- would fail with "tuple concurrently updated".
    PERFORM pg_advisory_xact_lock(hashtext('pystatus.service_logins'));
    v_restricted := EXISTS (SELECT FROM pystatus.service_logins);
    IF v_restricted IS DISTINCT FROM pystatus.logins_restricted() THEN
        EXECUTE format('CREATE OR REPLACE FUNCTION pystatus.logins_restricted() RETURNS boolean '
                       'LANGUAGE sql STABLE RETURN %s', CASE WHEN v_restricted THEN 'true' ELSE 'false' END);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION pystatus.sync_login_restriction() IS
    'Trigger function: makes pystatus.logins_restricted() return whether pystatus.service_logins has rows.';

CREATE TRIGGER service_logins_restrict
    AFTER INSERT OR DELETE OR TRUNCATE ON pystatus.service_logins
    FOR EACH STATEMENT EXECUTE FUNCTION pystatus.sync_login_restriction();
COMMENT ON TRIGGER service_logins_restrict ON pystatus.service_logins IS
    'Turns the restriction on with the first allowance and off with the last.';

COMMENT ON FUNCTION pystatus.heartbeat(text, text, text, double precision) IS
    'Records a heartbeat at the database server''s clock: upserts system_status (the trigger '
    'copies it to history) and returns the recorded time. latency_ms is an optional measure '
    'for trends. Bad input raises PS001-PS003, PS006; a login pystatus.service_logins does not '
    'allow for the service, PS007 (from the copy trigger). Runs as its owner: callers need only '
    'EXECUTE (pystatus_writer).';
COMMENT ON FUNCTION pystatus.heartbeat_many(text[], text[], text[], double precision[]) IS
    'Records many heartbeats in one call (arrays in step, one element per heartbeat; tasks and '
    'latencies optional). All or nothing: a bad element raises naming its position. Returns the '
    'number of services recorded. Runs as its owner: callers need only EXECUTE (pystatus_writer).';

------------------------------------------------------------------------------
-- The functions that call pg_partman, as new installations get them from 0001:
-- they cannot pin search_path (pg_partman 4.x would leave the pin on the
-- caller's session), so they name every object with its schema, operators
-- included, and leave the rest to pinned helpers. Installations made before
-- get the same code here.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus.missing_history_partitions(p_from timestamptz, p_until timestamptz)
RETURNS timestamptz[]
LANGUAGE plpgsql STABLE
SET "TimeZone" = 'UTC'
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_interval interval;
    v_anchor timestamptz := (SELECT min(starts) FROM pystatus.history_partitions);
    v_starts timestamptz[];
BEGIN
    IF p_from IS NULL OR p_until IS NULL OR NOT isfinite(p_from) OR NOT isfinite(p_until) OR p_from >= p_until THEN
        RAISE EXCEPTION 'invalid range [%, %): must be finite and non-empty', p_from, p_until
            USING ERRCODE = 'PS005';
    END IF;
    EXECUTE format('SELECT partition_interval::interval FROM %I.part_config WHERE parent_table = $1',
                   pystatus.partman_schema())
        INTO v_interval USING 'public.system_status_history';
    -- Step from an existing bound, in both directions, so new partitions line
    -- up with the others (pg_partman's create_partition_time takes starts as given).
    SELECT array_agg(s ORDER BY s) INTO v_starts
    FROM (SELECT generate_series(v_anchor, p_from - v_interval, -v_interval) AS s
          UNION SELECT generate_series(v_anchor, p_until, v_interval)) AS candidates
    WHERE s + v_interval > p_from AND s < p_until
      AND NOT EXISTS (SELECT FROM pystatus.history_partitions AS p WHERE s >= p.starts AND s < p.ends);
    RETURN v_starts;
END;
$$;
COMMENT ON FUNCTION pystatus.missing_history_partitions(timestamptz, timestamptz) IS
    'Starts of the history partitions missing in [p_from, p_until), aligned with the existing ones; '
    'NULL when none is missing.';

CREATE OR REPLACE FUNCTION pystatus.create_history_partitions(p_from timestamptz, p_until timestamptz)
RETURNS integer
LANGUAGE plpgsql
SET "TimeZone" = 'UTC'
AS $$
DECLARE
    v_starts timestamptz[] := pystatus.missing_history_partitions(p_from, p_until);
BEGIN
    IF v_starts IS NOT NULL THEN
        EXECUTE pg_catalog.format(
            'SELECT %I.create_partition_time(p_parent_table := $1, p_partition_times := $2)',
            pystatus.partman_schema())
            USING 'public.system_status_history', v_starts;
    END IF;
    RETURN coalesce(pg_catalog.cardinality(v_starts), 0);
END;
$$;
COMMENT ON FUNCTION pystatus.create_history_partitions(timestamptz, timestamptz) IS
    'Creates the missing history partitions covering [p_from, p_until), aligned with the existing '
    'ones; returns how many it created. For imports of older history (raise the retention first, '
    'or maintenance drops them again).';

CREATE OR REPLACE FUNCTION pystatus.history_partition_names()
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- Bare names: the partitions live in public.
    SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}')
    FROM pystatus.history_partitions AS p JOIN pg_class AS c ON c.oid = p.partition;
$$;
COMMENT ON FUNCTION pystatus.history_partition_names() IS
    'The history partitions'' names, for maintain() to report what it created and dropped.';

CREATE OR REPLACE FUNCTION pystatus.premade_range(OUT oldest timestamptz, OUT premade_until timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    oldest := (SELECT min(starts) FROM pystatus.history_partitions);
    EXECUTE format('SELECT now() + premake * partition_interval::interval FROM %I.part_config '
                   'WHERE parent_table = $1', pystatus.partman_schema())
        INTO premade_until USING 'public.system_status_history';
END;
$$;
COMMENT ON FUNCTION pystatus.premade_range() IS
    'From the oldest partition to the horizon pg_partman premakes to (now + premake partitions): '
    'where maintain() fills holes.';

CREATE OR REPLACE FUNCTION pystatus.maintenance_report(p_before text[], p_moved bigint)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'created', (SELECT coalesce(jsonb_agg(p ORDER BY p), '[]') FROM unnest(after) AS p WHERE p <> ALL (p_before)),
        'dropped', (SELECT coalesce(jsonb_agg(p ORDER BY p), '[]') FROM unnest(p_before) AS p WHERE p <> ALL (after)),
        'moved_from_default', p_moved)
    FROM pystatus.history_partition_names() AS after;
$$;
COMMENT ON FUNCTION pystatus.maintenance_report(text[], bigint) IS
    'What maintain() did: the partitions created and dropped since p_before, and the rows moved.';

CREATE OR REPLACE FUNCTION pystatus.maintain()
RETURNS jsonb
LANGUAGE plpgsql
SET "TimeZone" = 'UTC'
AS $$
DECLARE
    v_before text[];
    v_moved bigint := 0;
    v_range record;
BEGIN
    IF pg_catalog.pg_is_in_recovery() THEN
        RETURN pg_catalog.jsonb_build_object('skipped', 'this server is a replica');
    END IF;
    v_before := pystatus.history_partition_names();

    -- Rows in the default partition (maintenance was missed for longer than the
    -- premade partitions last) block creating the partitions they belong in:
    -- move them first.
    IF pystatus.history_default_rows() OPERATOR(pg_catalog.>) 0 THEN
        v_moved := pystatus.move_default_rows();
        RAISE WARNING 'moved % history rows out of the default partition', v_moved
            USING HINT = 'Maintenance did not run for a while: check its schedule.';
    END IF;

    EXECUTE pg_catalog.format('SELECT %I.run_maintenance(p_parent_table := %L, p_jobmon := false)',
                              pystatus.partman_schema(), 'public.system_status_history');

    -- pg_partman premakes after the newest partition only: also fill any hole
    -- up to the premade horizon (e.g. a partition dropped by hand).
    v_range := pystatus.premade_range();
    PERFORM pystatus.create_history_partitions(v_range.oldest, v_range.premade_until);
    RETURN pystatus.maintenance_report(v_before, v_moved);
END;
$$;
COMMENT ON FUNCTION pystatus.maintain() IS
    'Partition maintenance for system_status_history: moves rows out of the default partition, '
    'drops partitions past retention, premakes partitions ahead and fills holes. Run by pg_cron '
    '(or `pystatus maintain`); returns the partitions created and dropped and the rows moved.';

CREATE OR REPLACE FUNCTION pystatus.move_default_rows()
RETURNS bigint
LANGUAGE plpgsql
SET "TimeZone" = 'UTC'
AS $$
DECLARE
    v_moved bigint;
BEGIN
    EXECUTE pg_catalog.format('SELECT %I.partition_data_time(p_parent_table := %L, p_batch_count := %s)',
                              pystatus.partman_schema(), 'public.system_status_history',
                              greatest(pystatus.history_default_rows(), 1))
        INTO v_moved;
    RETURN v_moved;
END;
$$;

-- The copy trigger, which every status write goes through (the heartbeat
-- functions, and services that write system_status directly), also holds
-- each login to its allowances. Like 0001's, it runs for every row, so it does
-- not pin search_path and names everything with its schema.
CREATE OR REPLACE FUNCTION pystatus.copy_status_to_history()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    -- The staleness sweeper marks a silent service stale without a new
    -- heartbeat, and writes that history row itself, dated at the deadline.
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND NEW.status OPERATOR(pg_catalog.=) 'stale'
       AND NEW.last_heartbeat OPERATOR(pg_catalog.=) OLD.last_heartbeat THEN
        RETURN NULL;
    END IF;
    -- A test of its own: a constant when not restricted, no query at all.
    IF pystatus.logins_restricted() THEN
        IF NOT pystatus.may_report(NEW.service_name) THEN
            RAISE EXCEPTION 'login % may not heartbeat for service %', session_user,
                pg_catalog.quote_literal(NEW.service_name)
                USING ERRCODE = 'PS007',
                      HINT = 'pystatus.service_logins says which services each login may report '
                             '(SELECT pystatus.allow_service(login, pattern) as the owner).';
        END IF;
    END IF;
    INSERT INTO public.system_status_history
        (heartbeat_timestamp, service_name, status, current_task, latency_ms)
    VALUES (NEW.last_heartbeat, NEW.service_name, NEW.status, NEW.current_task, NEW.latency_ms);
    RETURN NULL;
END;
$$;

------------------------------------------------------------------------------
-- Every function pins search_path (installations made before this migration
-- got functions without it): a privileged caller, such as the pg_cron job,
-- never resolves a name through a schema someone else can write to. Functions
-- with an SQL-standard body are bound when created and need no pin; pinning
-- them would stop PostgreSQL inlining them into the heartbeat path.
------------------------------------------------------------------------------

DO $$
DECLARE
    v_function regprocedure;
BEGIN
    FOR v_function IN
        SELECT p.oid FROM pg_proc AS p
        WHERE p.pronamespace = 'pystatus'::regnamespace AND p.prosqlbody IS NULL
          AND NOT EXISTS (SELECT FROM unnest(p.proconfig) AS c WHERE c LIKE 'search\_path=%')
          -- These call pg_partman, which would leave the pin on the caller's
          -- session (see 0001); their bodies qualify every name instead.
          AND p.proname NOT IN ('create_history_partitions', 'maintain', 'move_default_rows')
          -- And this one runs for every row written: see 0001.
          AND p.proname <> 'copy_status_to_history'
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', v_function);
    END LOOP;
END;
$$;

-- The readers' functions run as their owner too: a reader needs no right on
-- history or the rollups, and reads them only through these answers.
ALTER FUNCTION pystatus.history(text, timestamptz, timestamptz) SECURITY DEFINER;
ALTER FUNCTION pystatus.transitions(text, timestamptz, timestamptz) SECURITY DEFINER;
ALTER FUNCTION pystatus.incidents(text, timestamptz, timestamptz) SECURITY DEFINER;
ALTER FUNCTION pystatus.uptime(text, timestamptz, timestamptz) SECURITY DEFINER;
ALTER FUNCTION pystatus.uptime_month(text, date, text) SECURITY DEFINER;
ALTER FUNCTION pystatus.trend(text, interval, interval, double precision) SECURITY DEFINER;
ALTER FUNCTION pystatus.task_durations(text, timestamptz, timestamptz) SECURITY DEFINER;
ALTER FUNCTION pystatus.daily_uptime(text, integer) SECURITY DEFINER;
ALTER FUNCTION pystatus.latency_hourly(text, timestamptz, timestamptz) SECURITY DEFINER;
ALTER FUNCTION pystatus.maintenance_jobs() SECURITY DEFINER;

------------------------------------------------------------------------------
-- Grants in this database
------------------------------------------------------------------------------

-- Nothing in pystatus is callable by default; each role gets what it needs.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA pystatus FROM PUBLIC;
-- But for the two rules system_status's constraints call: a service that still
-- writes system_status directly (granted UPDATE by its DBA, as before pystatus)
-- runs them with its own rights. They read nothing and write nothing.
GRANT EXECUTE ON FUNCTION pystatus.is_valid_service_name(text), pystatus.is_status(text) TO PUBLIC;
-- And the two the copy trigger calls with the writer's rights: whether logins
-- are restricted, and whether the connected login may report a service.
GRANT EXECUTE ON FUNCTION pystatus.logins_restricted(), pystatus.may_report(text) TO PUBLIC;
-- Which needs the schema's names: every role may look them up; the rights
-- to call or read anything there are granted one by one above and below.
GRANT USAGE ON SCHEMA pystatus TO PUBLIC;
GRANT USAGE ON SCHEMA pystatus TO pystatus_writer, pystatus_reader;

GRANT EXECUTE ON FUNCTION
    pystatus.heartbeat(text, text, text, double precision),
    pystatus.heartbeat_many(text[], text[], text[], double precision[])
TO pystatus_writer;

-- system_status: the seed dashboard's own query keeps working for readers.
GRANT SELECT ON public.system_status, pystatus.live_status TO pystatus_reader;
GRANT EXECUTE ON FUNCTION
    pystatus.goes_stale(text),  -- live_status calls it with the reader's rights
    pystatus.history(text, timestamptz, timestamptz),
    pystatus.transitions(text, timestamptz, timestamptz),
    pystatus.incidents(text, timestamptz, timestamptz),
    pystatus.uptime(text, timestamptz, timestamptz),
    pystatus.uptime_month(text, date, text),
    pystatus.trend(text, interval, interval, double precision),
    pystatus.task_durations(text, timestamptz, timestamptz),
    pystatus.daily_uptime(text, integer),
    pystatus.latency_hourly(text, timestamptz, timestamptz),
    pystatus.maintenance_jobs()
TO pystatus_reader;

------------------------------------------------------------------------------
-- pystatus.check() reports the roles too
------------------------------------------------------------------------------

ALTER FUNCTION pystatus.check() RENAME TO check_storage_and_jobs;
COMMENT ON FUNCTION pystatus.check_storage_and_jobs() IS
    'pystatus.check() without the roles: pg_partman, partitions premade ahead, default partition '
    'empty, retention, rollups and sweeper keeping up, pg_cron jobs scheduled and their last runs.';

CREATE FUNCTION pystatus.check_roles()
RETURNS TABLE (item text, ok boolean, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH role_problems AS (
        SELECT r.name,
               to_regrole(r.name) IS NOT NULL AS present,
               array_remove(ARRAY[
                   CASE WHEN to_regrole(r.name) IS NULL THEN 'missing: run pystatus migrate (as a role with CREATEROLE)' END,
                   CASE WHEN to_regrole(r.name) IS NOT NULL AND NOT has_schema_privilege(r.name, 'pystatus', 'USAGE')
                        THEN 'no USAGE on schema pystatus' END,
                   (SELECT 'has ' || concat_ws(', ', CASE WHEN a.rolcanlogin THEN 'LOGIN' END,
                                                CASE WHEN a.rolsuper THEN 'SUPERUSER' END,
                                                CASE WHEN a.rolcreaterole THEN 'CREATEROLE' END,
                                                CASE WHEN a.rolcreatedb THEN 'CREATEDB' END,
                                                CASE WHEN a.rolbypassrls THEN 'BYPASSRLS' END)
                           || ': ALTER ROLE ' || r.name || ' NOLOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS'
                    FROM pg_roles AS a
                    WHERE a.rolname = r.name
                      AND (a.rolcanlogin OR a.rolsuper OR a.rolcreaterole OR a.rolcreatedb OR a.rolbypassrls)),
                   (SELECT 'is a member of ' || string_agg(m.roleid::regrole::text, ', ') || ', which it does not need'
                    FROM pg_auth_members AS m WHERE m.member = to_regrole(r.name)),
                   (SELECT 'may change ' || string_agg(t.oid::regclass::text, ', ' ORDER BY t.oid::regclass::text)
                    FROM pg_class AS t
                    WHERE to_regrole(r.name) IS NOT NULL AND t.relkind IN ('r', 'p', 'v')
                      AND (t.relnamespace = 'pystatus'::regnamespace
                           OR t.oid IN ('public.system_status'::regclass, 'public.system_status_history'::regclass))
                      AND has_table_privilege(r.name, t.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')),
                   (SELECT 'cannot call ' || string_agg(f.signature, ', ')
                    FROM unnest(r.needs) AS f(signature)
                    WHERE to_regrole(r.name) IS NOT NULL AND NOT has_function_privilege(r.name, f.signature, 'EXECUTE'))
               ], NULL) AS problems,
               r.summary
        FROM (VALUES
            ('pystatus_writer', ARRAY['pystatus.heartbeat(text, text, text, double precision)',
                                      'pystatus.heartbeat_many(text[], text[], text[], double precision[])'],
             'may heartbeat, nothing else'),
            ('pystatus_reader', ARRAY['pystatus.history(text, timestamptz, timestamptz)',
                                      'pystatus.uptime(text, timestamptz, timestamptz)',
                                      'pystatus.incidents(text, timestamptz, timestamptz)'],
             'may read status and the answers from history')
        ) AS r(name, needs, summary)
    )
    SELECT 'role ' || name, cardinality(problems) = 0,
           CASE WHEN cardinality(problems) = 0
                THEN summary || coalesce(' (granted to ' || (
                         SELECT string_agg(m.member::regrole::text, ', ' ORDER BY m.member::regrole::text)
                         FROM pg_auth_members AS m WHERE m.roleid = to_regrole(name)) || ')', ' (granted to no one yet)')
                ELSE array_to_string(problems, '; ') END
    FROM role_problems
    UNION ALL
    SELECT 'public access', count(*) = 0,
           CASE WHEN count(*) = 0 THEN 'no pystatus function callable by every role but those status writes call'
                ELSE 'callable by every role: ' || string_agg(p.oid::regprocedure::text, ', ')
                     || ': REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA pystatus FROM PUBLIC' END
    FROM pg_proc AS p
    WHERE p.pronamespace = 'pystatus'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE')
      -- called with the rights of whoever writes system_status, on purpose (see the grants)
      AND p.oid NOT IN ('pystatus.is_valid_service_name(text)'::regprocedure, 'pystatus.is_status(text)'::regprocedure,
                        'pystatus.logins_restricted()'::regprocedure, 'pystatus.may_report(text)'::regprocedure)
    UNION ALL
    SELECT 'status tables',
           bool_and(x.privilege_type <> 'TRIGGER') IS NOT FALSE,
           CASE WHEN count(*) = 0 THEN 'written by pystatus''s functions only'
                WHEN bool_or(x.privilege_type = 'TRIGGER')
                THEN 'may add triggers, which run with the owner''s rights: '
                     || string_agg(x.grantee || ' on ' || x.relation, ', ') FILTER (WHERE x.privilege_type = 'TRIGGER')
                     || ': REVOKE TRIGGER ON ... FROM ...'
                ELSE 'written directly by ' || string_agg(DISTINCT x.grantee, ', ')
                     || ' (as before pystatus; pystatus_writer is the narrower right)' END
    FROM (SELECT t.oid::regclass::text AS relation, a.privilege_type,
                 CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grantee
          FROM pg_class AS t CROSS JOIN LATERAL aclexplode(t.relacl) AS a
          WHERE t.oid IN ('public.system_status'::regclass, 'public.system_status_history'::regclass)
            AND a.grantee <> t.relowner
            AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER')) AS x
    UNION ALL
    SELECT 'service logins',
           l.gone IS NULL AND (l.allowances > 0) = r.restricting,
           CASE WHEN (l.allowances > 0) <> r.restricting
                    THEN 'out of step with pystatus.logins_restricted(): add or remove an allowance to set it again'
                WHEN l.allowances = 0 THEN 'off: any writer may report any service'
                WHEN l.gone IS NULL THEN l.logins || ' logins restricted to their services'
                ELSE 'allowances for logins that no longer exist: ' || l.gone
                     || ': SELECT pystatus.disallow_service(login, pattern)' END
    FROM (SELECT count(*) AS allowances, count(DISTINCT login) AS logins,
                 string_agg(DISTINCT login::text, ', ') FILTER (WHERE to_regrole(quote_ident(login)) IS NULL) AS gone
          FROM pystatus.service_logins) AS l,
         (SELECT pystatus.logins_restricted() AS restricting) AS r;
$$;
COMMENT ON FUNCTION pystatus.check_roles() IS
    'The roles'' health: pystatus_writer and pystatus_reader exist, hold what they need and cannot '
    'change any table; no function is callable by every role; allowances name existing logins.';

CREATE FUNCTION pystatus.check()
RETURNS TABLE (item text, ok boolean, detail text)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM pystatus.check_storage_and_jobs()
    UNION ALL
    SELECT * FROM pystatus.check_roles();
$$;
COMMENT ON FUNCTION pystatus.check() IS
    'The installation''s health: pg_partman, partitions premade ahead, default partition empty, '
    'retention, rollups and sweeper keeping up, pg_cron jobs scheduled and their last runs, roles. '
    'ok is false for each problem, with what to do in detail.';
REVOKE EXECUTE ON FUNCTION pystatus.check_roles(), pystatus.check() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pystatus.check() TO pystatus_reader;

-- And the report `pystatus migrate` prints says what is left to grant.
ALTER FUNCTION pystatus.setup_report() RENAME TO setup_report_storage_and_jobs;
COMMENT ON FUNCTION pystatus.setup_report_storage_and_jobs() IS
    'pystatus.setup_report() without the roles.';

CREATE FUNCTION pystatus.setup_report(OUT item text, OUT value text, OUT todo text)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM pystatus.setup_report_storage_and_jobs()
    UNION ALL
    SELECT r.item, r.detail,
           CASE WHEN NOT r.ok THEN r.detail
                WHEN NOT EXISTS (SELECT FROM pg_auth_members WHERE roleid = to_regrole(substr(r.item, 6)))
                THEN format('grant %s to the logins of %s: GRANT %1$s TO <login>',
                            substr(r.item, 6),
                            CASE r.item WHEN 'role pystatus_writer' THEN 'services'
                                        ELSE 'dashboards and monitoring' END) END
    FROM pystatus.check_roles() AS r
    WHERE r.item LIKE 'role %';
$$;
COMMENT ON FUNCTION pystatus.setup_report() IS
    'The installation at a glance (pg_partman, partitions, retention, default partition, '
    'maintenance scheduler, roles), with what is left for the DBA to do in todo.';
REVOKE EXECUTE ON FUNCTION pystatus.setup_report() FROM PUBLIC;
