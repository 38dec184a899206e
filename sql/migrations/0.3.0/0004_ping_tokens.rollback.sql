-- Undo 0004_ping_tokens: the ping tokens and their functions.

SET LOCAL search_path = pg_catalog, pg_temp;

DO $$
DECLARE
    v_function regprocedure;
BEGIN
    FOR v_function IN
        SELECT p.oid FROM pg_proc AS p
        WHERE p.pronamespace = 'pystatus'::regnamespace
          AND p.proname IN ('add_ping_token', 'remove_ping_token', 'ping_token_list', 'ping',
                            'service_overview', 'recent_incidents')
    LOOP
        EXECUTE format('DROP FUNCTION %s', v_function);
    END LOOP;
END;
$$;
DROP TABLE pystatus.ping_tokens;

DELETE FROM pystatus.definitions_applied;
