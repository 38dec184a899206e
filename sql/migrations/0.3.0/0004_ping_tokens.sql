-- Ping tokens (0.3.0): the secrets of the HTTP ping endpoint, one or more per
-- service, stored as their SHA-256 hash.
-- depends: 0003_alerts

SET LOCAL search_path = pg_catalog, pg_temp;

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
