-- Ping tokens: the HTTP ping endpoint (`pystatus ingest`) reports a service's
-- status for whoever holds one of its tokens, so a cron job or a shell script
-- heartbeats with curl. A token is a random secret shown once; only its
-- SHA-256 is stored, and a table reader cannot turn it back into a token.

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION pystatus.add_ping_token(service_name text, note text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_token text;
BEGIN
    PERFORM pystatus._check_heartbeat(add_ping_token.service_name, 'ok', NULL, NULL);
    IF octet_length(add_ping_token.note) > 1024 THEN
        RAISE EXCEPTION 'invalid note: it is % bytes, the limit is 1024 bytes', octet_length(add_ping_token.note)
            USING ERRCODE = 'PS005';
    END IF;
    -- 122 random bits (a version 4 UUID's, from the server's strong random
    -- source), as Healthchecks' ping URLs have. The prefix names the token
    -- in lists; its 32 bits may collide, so a collision draws again.
    LOOP
        v_token := 'ps_' || replace(gen_random_uuid()::text, '-', '');
        BEGIN
            INSERT INTO pystatus.ping_tokens (token_hash, token_prefix, service_name, note)
            VALUES (sha256(convert_to(v_token, 'UTF8')), left(v_token, 11), add_ping_token.service_name,
                    add_ping_token.note);
            RETURN v_token;
        EXCEPTION WHEN unique_violation THEN
            NULL;
        END;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION pystatus.add_ping_token(text, text) IS
    'Makes a secret token that lets the HTTP ping endpoint report this service''s status, and returns '
    'it: the only time it is shown (only its hash is kept). A service may have several (one per '
    'script, say). PS001 for a bad service name, PS005 for a note over 1024 bytes.';

CREATE OR REPLACE FUNCTION pystatus.remove_ping_token(token_prefix text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_service text;
BEGIN
    DELETE FROM pystatus.ping_tokens AS t WHERE t.token_prefix = left(remove_ping_token.token_prefix, 11)
    RETURNING t.service_name INTO v_service;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no ping token %', quote_nullable(left(remove_ping_token.token_prefix, 11))
            USING ERRCODE = 'PS005', HINT = 'pystatus tokens list shows each token''s prefix, ps_ and 8 characters.';
    END IF;
    RETURN v_service;
END;
$$;
COMMENT ON FUNCTION pystatus.remove_ping_token(text) IS
    'Revokes a ping token, named by its prefix (ps_ and 8 characters, as listed) or given whole; '
    'returns its service. Pings with it are refused from the next request on. PS005 if there is none.';

CREATE OR REPLACE FUNCTION pystatus.ping_token_list()
RETURNS TABLE (token_prefix text, service_name text, note text, created_by name, created_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT t.token_prefix, t.service_name::text, t.note, t.created_by, t.created_at
    FROM pystatus.ping_tokens AS t
    ORDER BY t.service_name, t.created_at;
END;
COMMENT ON FUNCTION pystatus.ping_token_list() IS
    'The ping tokens, by prefix (the tokens themselves are not kept).';

-- Runs as its owner: the ingest service's login is a pystatus_writer and
-- cannot read ping_tokens. The copy trigger still holds that login to its
-- allowances (pystatus.service_logins), so with restricted logins it needs
-- one covering the services it has tokens for.
CREATE OR REPLACE FUNCTION pystatus.ping(
    token text,
    status text DEFAULT 'ok',
    current_task text DEFAULT NULL,
    latency_ms double precision DEFAULT NULL)
RETURNS timestamptz
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_service text;
    v_latency_ms double precision := ping.latency_ms;
    v_last record;
BEGIN
    SELECT t.service_name INTO v_service FROM pystatus.ping_tokens AS t
    WHERE t.token_hash = sha256(convert_to(ping.token, 'UTF8'));
    IF NOT FOUND THEN
        -- The same error for a token never made, revoked, or malformed.
        RAISE EXCEPTION 'unknown ping token' USING ERRCODE = 'PS008';
    END IF;
    -- A job that pinged /start and now reports its end: how long it ran is
    -- its latency, so `trend` tells whether the job is getting slower.
    IF v_latency_ms IS NULL AND ping.status IS DISTINCT FROM 'starting' THEN
        SELECT s.status, s.last_heartbeat INTO v_last FROM public.system_status AS s
        WHERE s.service_name = v_service;
        IF v_last.status = 'starting' THEN
            v_latency_ms := greatest(pystatus._microseconds(clock_timestamp() - v_last.last_heartbeat), 0) / 1000.0;
        END IF;
    END IF;
    RETURN pystatus.heartbeat(v_service, ping.status, ping.current_task, v_latency_ms);
END;
$$;
COMMENT ON FUNCTION pystatus.ping(text, text, text, double precision) IS
    'Records a heartbeat for the service a ping token belongs to (see heartbeat()). Without a '
    'latency, a ping that ends a run begun with status starting records the run''s length in '
    'milliseconds as its latency. PS008 for a token that is unknown, revoked or malformed (the '
    'same error for each); the errors of heartbeat() for bad input. Callers need only EXECUTE '
    '(pystatus_writer).';
