-- Undo 0005.
DROP FUNCTION pystatus.check();
