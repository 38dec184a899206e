-- The pystatus schema: every function, view and table of pystatus but the two
-- status tables, which stay in public so that existing queries keep working.
--
-- How these files are used (sql/README.md has the whole story):
--   * each object is defined in exactly one file of sql/schema/, by concern;
--   * 20_tables.sql holds what has state (tables, types, pg_partman's
--     configuration): it is created and changed by sql/migrations/ only, and a
--     test proves the migrations build exactly what it says;
--   * every other file is re-applied by `pystatus migrate`, in the same
--     transaction as the pending migrations, whenever any of them changed:
--     the files before 20_tables.sql before the migrations, the rest after.
--
-- Private helpers start with an underscore; everything else is the SQL API.

SET LOCAL search_path = pg_catalog, pg_temp;

-- Functions here run with their owner's rights, so whoever owns the schema
-- could replace them: an existing schema is used only if this role or a
-- superuser owns it.
DO $$
DECLARE
    v_owner name := (SELECT r.rolname FROM pg_namespace AS n JOIN pg_roles AS r ON r.oid = n.nspowner
                     WHERE n.nspname = 'pystatus');
BEGIN
    IF v_owner IS NULL THEN
        CREATE SCHEMA pystatus;
    ELSIF NOT (v_owner = current_user
               OR (SELECT rolsuper FROM pg_roles WHERE rolname = v_owner)) THEN
        RAISE EXCEPTION 'schema pystatus belongs to role %, not to % (the role migrating)', v_owner, current_user
            USING ERRCODE = 'PS010',
                  HINT = format('As a superuser: ALTER SCHEMA pystatus OWNER TO %I; then migrate again.', current_user);
    END IF;
END;
$$;

COMMENT ON SCHEMA pystatus IS
    'pystatus: service heartbeats with history. Functions here are the API (names starting with '
    '_ are private helpers); the status tables stay in public so existing dashboard queries keep working.';
