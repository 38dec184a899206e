-- Undo 0004.
DROP FUNCTION pystatus.heartbeat_many(text[], text[], text[], double precision[]);
