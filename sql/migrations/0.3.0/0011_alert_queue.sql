-- The alert queue read by index: claiming a few messages read every pending
-- message, twice over, to find each channel's and service's first; and
-- summaries, one message for many services of a channel that alert at once.
-- depends: 0010_job_locks
--
-- One new column, no default: nothing rewritten. The indexes cover pending
-- messages only and are built here: heartbeats never touch the alert tables,
-- and alert workers wait for this transaction.

SET LOCAL search_path = pg_catalog, pg_temp;

ALTER TABLE pystatus.alert_messages ADD COLUMN services varchar(64)[];
COMMENT ON COLUMN pystatus.alert_messages.services IS
    'A summary''s services (service_name NULL): one message for many services of a channel that '
    'alerted at once. NULL for a message about one service, and for a test.';

DROP INDEX pystatus.alert_messages_due;
CREATE INDEX alert_messages_due ON pystatus.alert_messages (channel, next_attempt_at, id)
    WHERE state = 'pending';
COMMENT ON INDEX pystatus.alert_messages_due IS
    'Each channel''s pending messages in the order they are due: what claim_alert_messages() takes.';
CREATE INDEX alert_messages_pending_service ON pystatus.alert_messages (channel, service_name, id)
    WHERE state = 'pending';
COMMENT ON INDEX pystatus.alert_messages_pending_service IS
    'Each channel''s pending messages by service (summaries under NULL): whether an earlier one about '
    'the same service is still pending (_alert_in_turn()).';
CREATE INDEX alert_messages_sending ON pystatus.alert_messages (channel)
    WHERE state = 'pending' AND claimed_until IS NOT NULL;
COMMENT ON INDEX pystatus.alert_messages_sending IS
    'The messages claimed and not yet reported: how many of a channel''s are being sent.';

-- Messages are written by evaluate_alerts() itself now, in one statement.
DROP FUNCTION IF EXISTS pystatus._queue_alert(text, text, bigint, text, text, text, timestamptz, timestamptz, integer);
DROP FUNCTION IF EXISTS pystatus._alert_body(text, text, bigint, text, text, text, timestamptz, timestamptz, integer);
-- evaluate_alerts() reads the events of all services at once, and raw history
-- only where they do not say (_spell_began_in_history()).
DROP FUNCTION IF EXISTS pystatus._spell_began(text, boolean);
