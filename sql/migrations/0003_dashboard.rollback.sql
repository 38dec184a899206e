-- Undo 0003: the dashboard's read functions.
DROP FUNCTION pystatus.latency_hourly(text, timestamptz, timestamptz);
DROP FUNCTION pystatus.daily_uptime(text, integer);
