-- What a writer (or reader) can create to hijack functions that run with
-- their owner's rights: look-alikes of functions and operators in a schema it
-- owns, which it puts before pg_catalog in its search_path.
CREATE SCHEMA evil;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
CREATE TABLE evil.captured (who text, what text);
GRANT INSERT ON evil.captured TO PUBLIC;
-- Called with the owner's rights, each would record who it ran as.
CREATE FUNCTION evil.clock_timestamp() RETURNS timestamptz LANGUAGE sql AS
    $$ INSERT INTO evil.captured VALUES (current_user, 'clock_timestamp') RETURNING timestamptz '2000-01-01' $$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS
    $$ INSERT INTO evil.captured VALUES (current_user, 'now') RETURNING timestamptz '2000-01-01' $$;
CREATE FUNCTION evil.cardinality(anyarray) RETURNS integer LANGUAGE sql AS
    $$ INSERT INTO evil.captured VALUES (current_user, 'cardinality') RETURNING 1 $$;
CREATE FUNCTION evil.text_eq(text, text) RETURNS boolean LANGUAGE sql AS
    $$ INSERT INTO evil.captured VALUES (current_user, 'text =') RETURNING $1 OPERATOR(pg_catalog.=) $2 $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_eq);
CREATE FUNCTION evil.varchar_eq(varchar, varchar) RETURNS boolean LANGUAGE sql AS
    $$ INSERT INTO evil.captured VALUES (current_user, 'varchar =') RETURNING $1::text OPERATOR(pg_catalog.=) $2::text $$;
CREATE OPERATOR evil.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = evil.varchar_eq);
CREATE FUNCTION evil.tstz_lt(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql AS
    $$ INSERT INTO evil.captured VALUES (current_user, 'timestamptz <') RETURNING $1 OPERATOR(pg_catalog.<) $2 $$;
CREATE OPERATOR evil.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.tstz_lt);
-- Look-alikes of the copy trigger's transition tables, each with a row that
-- would show up in history if the trigger read it.
CREATE TABLE evil.new_rows AS
    SELECT 'hijacked'::varchar(64) AS service_name, 'ok'::varchar(16) AS status, NULL::text AS current_task,
           NULL::float8 AS latency_ms, pg_catalog.now() AS last_heartbeat, pg_catalog.now() AS updated_at;
CREATE TABLE evil.old_rows AS SELECT * FROM evil.new_rows;
GRANT SELECT ON evil.new_rows, evil.old_rows TO PUBLIC;
