-- Roles and rights: pystatus_writer may only heartbeat, pystatus_reader may
-- only read what dashboards and the CLI read, pystatus_alerter may only run
-- the alert worker's three calls; the owner (the role that
-- migrates) keeps the rest. Optionally, each login may heartbeat only for its
-- own service names. Last of the files, because it grants rights on what the
-- others define.

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
    FOREACH v_role IN ARRAY ARRAY['pystatus_writer', 'pystatus_reader', 'pystatus_alerter'] LOOP
        IF to_regrole(v_role) IS NULL THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
            EXECUTE format('COMMENT ON ROLE %I IS %L', v_role, CASE v_role
                WHEN 'pystatus_writer' THEN
                    'pystatus: may record heartbeats (pystatus.heartbeat, pystatus.heartbeat_many), nothing else. '
                    'Grant it to the logins services use.'
                WHEN 'pystatus_alerter' THEN
                    'pystatus: may run the alert worker (evaluate alerts, claim messages, report deliveries; '
                    'marks silent services stale), nothing else. Grant it to the login of `pystatus alerts run`.'
                ELSE
                    'pystatus: may read current status and the answers from history (the functions dashboards '
                    'and the CLI call), nothing else. Grant it to dashboards and monitoring.' END);
        END IF;
    END LOOP;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'role % does not exist and % cannot create it: %', v_role, current_user, SQLERRM
        USING ERRCODE = 'PS010',
              HINT = 'As a superuser (or a role with CREATEROLE): '
                     'CREATE ROLE pystatus_writer NOLOGIN; CREATE ROLE pystatus_reader NOLOGIN; '
                     'CREATE ROLE pystatus_alerter NOLOGIN; GRANT pystatus_writer, pystatus_reader, '
                     'pystatus_alerter TO ' || quote_ident(current_user) || ' WITH ADMIN OPTION; '
                     '(the owner grants them to logins); then migrate again.';
END;
$$;

------------------------------------------------------------------------------
-- The heartbeat functions and the copy trigger run with the owner's rights,
-- and any trigger on the status tables runs with them too. So the tables and
-- pg_partman's schema must belong to this role or to a superuser, and no other
-- role may add triggers to the tables.
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
                 ('schema ' || pystatus._partman_schema(),
                  (SELECT nspowner FROM pg_namespace WHERE nspname = pystatus._partman_schema()))) AS o(name, owner)
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
-- Which login may report which services (opt-in; the table is in 20_tables.sql)
------------------------------------------------------------------------------

-- Asked by the copy trigger, which runs with the rights of whoever writes
-- system_status: it runs as its owner, so writers need no right on the table.
-- session_user: the login that connected, whatever role it has set since.
CREATE OR REPLACE FUNCTION pystatus._may_report(service_name text)
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
                   WHERE l.login = session_user AND _may_report.service_name LIKE l.like_pattern)
        OR pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'pystatus'), 'MEMBER');
END;
$$;
COMMENT ON FUNCTION pystatus._may_report(text) IS
    'Whether the connected login may write a status for this service under pystatus.service_logins '
    '(its own allowances; the owner and superusers always may).';

-- Whether logins are restricted is kept where the copy trigger reads it for
-- free: as the body of a constant function, which PostgreSQL inlines into its
-- plans (replacing it invalidates them). An EXISTS on the table cost every
-- heartbeat, restricted or not. Defined here as
-- false, and set from the table at once (and by a trigger on every change).
CREATE OR REPLACE FUNCTION pystatus._logins_restricted()
RETURNS boolean
LANGUAGE sql STABLE
RETURN false;
COMMENT ON FUNCTION pystatus._logins_restricted() IS
    'Whether pystatus.service_logins has rows; rewritten by _sync_logins_restricted().';

CREATE OR REPLACE FUNCTION pystatus._sync_logins_restricted()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_restricted boolean;
BEGIN
    -- One change at a time: two transactions replacing the function at once
    -- would fail with "tuple concurrently updated".
    PERFORM pystatus._wait_job_lock('service_logins');
    v_restricted := EXISTS (SELECT FROM pystatus.service_logins);
    IF v_restricted IS DISTINCT FROM pystatus._logins_restricted() THEN
        EXECUTE format('CREATE OR REPLACE FUNCTION pystatus._logins_restricted() RETURNS boolean '
                       'LANGUAGE sql STABLE RETURN %s', CASE WHEN v_restricted THEN 'true' ELSE 'false' END);
    END IF;
END;
$$;
COMMENT ON FUNCTION pystatus._sync_logins_restricted() IS
    'Makes pystatus._logins_restricted() return whether pystatus.service_logins has rows.';

SELECT pystatus._sync_logins_restricted();

CREATE OR REPLACE FUNCTION pystatus._service_logins_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pystatus._sync_logins_restricted();
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION pystatus._service_logins_changed() IS
    'Trigger function: keeps pystatus._logins_restricted() in step with pystatus.service_logins.';

CREATE OR REPLACE TRIGGER service_logins_restrict
    AFTER INSERT OR DELETE OR TRUNCATE ON pystatus.service_logins
    FOR EACH STATEMENT EXECUTE FUNCTION pystatus._service_logins_changed();
COMMENT ON TRIGGER service_logins_restrict ON pystatus.service_logins IS
    'Turns the restriction on with the first allowance and off with the last.';

CREATE OR REPLACE FUNCTION pystatus.allow_service(login name, service_pattern text)
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

CREATE OR REPLACE FUNCTION pystatus.disallow_service(login name, service_pattern text)
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
-- Who may do what: the one list. The grants below are made from it,
-- _check_roles() checks the installation against it, and the tests read it.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pystatus._role_rights()
RETURNS TABLE (grantee name, privilege text, object text)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES
    -- Services: heartbeats, nothing else (the functions run as their owner).
    ('pystatus_writer'::name, 'USAGE', 'SCHEMA pystatus'),
    ('pystatus_writer', 'EXECUTE', 'FUNCTION pystatus.heartbeat(text, text, text, double precision)'),
    ('pystatus_writer', 'EXECUTE', 'FUNCTION pystatus.heartbeat_many(text[], text[], text[], double precision[])'),
    ('pystatus_writer', 'EXECUTE', 'FUNCTION pystatus.ping(text, text, text, double precision)'),  -- pystatus ingest
    -- Dashboards and monitoring: the seed dashboard's own query on
    -- system_status, live_status, and the answers (which run as their owner).
    ('pystatus_reader', 'USAGE', 'SCHEMA pystatus'),
    ('pystatus_reader', 'SELECT', 'TABLE public.system_status'),
    ('pystatus_reader', 'SELECT', 'TABLE pystatus.live_status'),
    -- live_status calls these three with the reader's rights.
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.goes_stale(text)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.status_category(text)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.maintenance_occurrences(timestamptz, timestamptz)'),
    -- The questions' checks: a window, a service name (read with the reader's rights).
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.checked_window(text, text)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.max_window()'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.window_start(timestamptz, text, text)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.known_service(text, boolean)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.history(text, timestamptz, timestamptz)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.transitions(text, timestamptz, timestamptz)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.incidents(text, timestamptz, timestamptz)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.uptime(text, timestamptz, timestamptz)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.uptime_month(text, date, text)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.trend(text, interval, interval, double precision)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.task_durations(text, timestamptz, timestamptz)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.daily_uptime(text, integer)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.latency_hourly(text, timestamptz, timestamptz)'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.maintenance_jobs()'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.check()'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.cron_database()'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.metrics()'),  -- Prometheus scrapes
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.service_overview(integer, integer, boolean, text)'),  -- the dashboard
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.fleet_counts()'),
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.needs_attention(text)'),  -- fleet_counts calls it
    ('pystatus_reader', 'EXECUTE', 'FUNCTION pystatus.recent_incidents(timestamptz)'),
    -- The alert worker: decide, claim, report (each runs as its owner).
    ('pystatus_alerter', 'USAGE', 'SCHEMA pystatus'),
    ('pystatus_alerter', 'EXECUTE', 'FUNCTION pystatus.alert_sweep()'),
    ('pystatus_alerter', 'EXECUTE', 'FUNCTION pystatus.evaluate_alerts()'),
    ('pystatus_alerter', 'EXECUTE', 'FUNCTION pystatus.claim_alert_messages(text, integer, interval, bigint)'),
    ('pystatus_alerter', 'EXECUTE', 'FUNCTION pystatus.finish_alert_attempt(bigint, integer, text)'),
    -- Every role: what a status write calls with the writer's own rights, for
    -- services that still write system_status directly (granted INSERT and
    -- UPDATE by their DBA, as before pystatus): the rules system_status's
    -- constraints call (with the naming rule's pattern and the status
    -- vocabulary), the two the copy trigger calls, and the constant the
    -- history's late-rows trigger compares with. None reads or writes anything
    -- the caller could not; looking their names up needs the schema's USAGE.
    ('public', 'USAGE', 'SCHEMA pystatus'),
    -- Every client asks which version is installed before it explains an error.
    ('public', 'EXECUTE', 'FUNCTION pystatus.installed_version()'),
    ('public', 'EXECUTE', 'FUNCTION pystatus.is_valid_service_name(text)'),
    ('public', 'EXECUTE', 'FUNCTION pystatus._service_name_pattern()'),
    ('public', 'EXECUTE', 'FUNCTION pystatus._name_characters(text)'),
    ('public', 'EXECUTE', 'FUNCTION pystatus.is_status(text)'),
    ('public', 'EXECUTE', 'FUNCTION pystatus._statuses()'),
    ('public', 'EXECUTE', 'FUNCTION pystatus._logins_restricted()'),
    ('public', 'EXECUTE', 'FUNCTION pystatus._may_report(text)'),
    ('public', 'EXECUTE', 'FUNCTION pystatus._rollup_delay()'),
    -- The vocabulary's constants: live_status and set_expectations()'s default
    -- call the defaults with the caller's rights, and any client may read them
    -- (status_severity() is the order a client lists statuses in).
    ('public', 'EXECUTE', 'FUNCTION pystatus.status_severity(text)'),
    ('public', 'EXECUTE', 'FUNCTION pystatus.default_expected_interval()'),
    ('public', 'EXECUTE', 'FUNCTION pystatus.default_grace()');
$$;
COMMENT ON FUNCTION pystatus._role_rights() IS
    'Every right pystatus grants: grantee (public for every role), privilege and object. Nothing else in '
    'the pystatus schema, nor on the status tables, is granted to these roles.';

------------------------------------------------------------------------------
-- The roles' health, for check() and setup_report() (80_check.sql)
------------------------------------------------------------------------------

-- Whether each role holds each right of the list: what check() reports, and
-- what makes migrate apply the definitions again (after a restore without roles).
CREATE OR REPLACE FUNCTION pystatus._role_rights_held()
RETURNS TABLE (grantee name, object text, held boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.grantee, r.object,
           CASE WHEN to_regrole(r.grantee) IS NULL THEN false
                WHEN split_part(r.object, ' ', 1) = 'FUNCTION'
                    THEN has_function_privilege(r.grantee, substr(r.object, 10), r.privilege)
                WHEN split_part(r.object, ' ', 1) = 'TABLE'
                    THEN has_table_privilege(r.grantee, substr(r.object, 7), r.privilege)
                ELSE has_schema_privilege(r.grantee, substr(r.object, 8), r.privilege) END
    FROM pystatus._role_rights() AS r
    WHERE r.grantee <> 'public';
$$;
COMMENT ON FUNCTION pystatus._role_rights_held() IS
    'Each right of _role_rights() but PUBLIC''s, and whether its role holds it (false when the '
    'role does not exist).';

CREATE OR REPLACE FUNCTION pystatus._check_roles()
RETURNS TABLE (item text, ok boolean, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH rights AS (
        SELECT h.grantee, h.object, h.held
        FROM pystatus._role_rights_held() AS h
        WHERE to_regrole(h.grantee) IS NOT NULL
    ), role_problems AS (
        SELECT r.name,
               array_remove(ARRAY[
                   CASE WHEN to_regrole(r.name) IS NULL THEN 'missing: run pystatus migrate (as a role with CREATEROLE)' END,
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
                   (SELECT string_agg(CASE split_part(g.object, ' ', 1) WHEN 'FUNCTION' THEN 'cannot call '
                                                                     WHEN 'TABLE' THEN 'cannot read '
                                                                     ELSE 'no USAGE on ' END
                                      || substr(g.object, strpos(g.object, ' ') + 1), '; ')
                    FROM rights AS g WHERE g.grantee = r.name AND NOT g.held)
               ], NULL) AS problems,
               r.summary
        FROM (VALUES
            ('pystatus_writer', 'may heartbeat, nothing else'),
            ('pystatus_reader', 'may read status and the answers from history'),
            ('pystatus_alerter', 'may run the alert worker')
        ) AS r(name, summary)
    )
    SELECT 'role ' || name, cardinality(problems) = 0,
           CASE WHEN cardinality(problems) = 0
                THEN summary || coalesce(' (granted to ' || (
                         SELECT string_agg(m.member::regrole::text, ', ' ORDER BY m.member::regrole::text)
                         FROM pg_auth_members AS m WHERE m.roleid = to_regrole(name) AND NOT m.admin_option)
                         || ')', ' (granted to no one yet)')
                ELSE array_to_string(problems, '; ') END
    FROM role_problems
    UNION ALL
    SELECT 'public access', count(*) = 0,
           CASE WHEN count(*) = 0 THEN 'no pystatus function callable by every role but those status writes call'
                ELSE 'callable by every role: ' || string_agg(p.oid::regprocedure::text, ', ')
                     || ': run pystatus migrate --reapply' END
    FROM pg_proc AS p
    WHERE p.pronamespace = 'pystatus'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE')
      AND p.oid NOT IN (SELECT to_regprocedure(substr(r.object, 10))::oid FROM pystatus._role_rights() AS r
                        WHERE r.grantee = 'public' AND r.object LIKE 'FUNCTION %')
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
                    THEN 'out of step with pystatus._logins_restricted(): add or remove an allowance to set it again'
                WHEN l.allowances = 0 THEN 'off: any writer may report any service'
                WHEN l.gone IS NULL THEN l.logins || ' logins restricted to their services'
                ELSE 'allowances for logins that no longer exist: ' || l.gone
                     || ': SELECT pystatus.disallow_service(login, pattern)' END
    FROM (SELECT count(*) AS allowances, count(DISTINCT login) AS logins,
                 string_agg(DISTINCT login::text, ', ') FILTER (WHERE to_regrole(quote_ident(login)) IS NULL) AS gone
          FROM pystatus.service_logins) AS l,
         (SELECT pystatus._logins_restricted() AS restricting) AS r;
$$;
COMMENT ON FUNCTION pystatus._check_roles() IS
    'The roles'' health: pystatus_writer, pystatus_reader and pystatus_alerter exist and hold what pystatus._role_rights() '
    'grants them, cannot change any table, and no function is callable by every role but those it lists; '
    'allowances name existing logins.';

------------------------------------------------------------------------------
-- The grants: last, so that they cover every function above
------------------------------------------------------------------------------

-- Exactly the list, whatever was granted before: everything in the schema is
-- first taken from the three grantees (functions are executable by PUBLIC by
-- default), then the list is granted. Rights the DBA gave other roles on
-- system_status (services that write it directly) are left alone.
DO $$
DECLARE
    v_right record;
BEGIN
    REVOKE ALL ON SCHEMA pystatus FROM PUBLIC, pystatus_writer, pystatus_reader, pystatus_alerter;
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pystatus FROM PUBLIC, pystatus_writer, pystatus_reader, pystatus_alerter;
    REVOKE ALL ON ALL TABLES IN SCHEMA pystatus FROM PUBLIC, pystatus_writer, pystatus_reader, pystatus_alerter;
    REVOKE ALL ON public.system_status, public.system_status_history
        FROM pystatus_writer, pystatus_reader, pystatus_alerter;
    FOR v_right IN SELECT * FROM pystatus._role_rights() LOOP
        EXECUTE format('GRANT %s ON %s TO %s', v_right.privilege, v_right.object,
                       CASE v_right.grantee WHEN 'public' THEN 'PUBLIC' ELSE quote_ident(v_right.grantee) END);
    END LOOP;
END;
$$;
