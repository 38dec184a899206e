-- Undo 0011_alert_queue: the alert queue indexed by due time only, without
-- summaries (those still pending are sent by the version rolled back to
-- without their list of services). Its definitions replace the functions that
-- read these; the helpers only this version has go now (one of them names the
-- column in an SQL-standard body).

SET LOCAL search_path = pg_catalog, pg_temp;

DROP FUNCTION IF EXISTS pystatus._alert_in_turn(bigint, text, text, text[]);
DROP FUNCTION IF EXISTS pystatus._alert_sends_per_channel();
DROP FUNCTION IF EXISTS pystatus._alert_entry(text, bigint, text, text, text, timestamptz, timestamptz, integer, text, timestamptz);
DROP FUNCTION IF EXISTS pystatus._alert_header(text, text);
DROP FUNCTION IF EXISTS pystatus._alert_summary_text(text, text[]);
DROP FUNCTION IF EXISTS pystatus._alert_group_threshold();
DROP FUNCTION IF EXISTS pystatus._alert_group_limit();
DROP FUNCTION IF EXISTS pystatus._spell_began_in_history(text, boolean);

DROP INDEX pystatus.alert_messages_sending;
DROP INDEX pystatus.alert_messages_pending_service;
DROP INDEX pystatus.alert_messages_due;
CREATE INDEX alert_messages_due ON pystatus.alert_messages (next_attempt_at) WHERE state = 'pending';
ALTER TABLE pystatus.alert_messages DROP COLUMN services;
