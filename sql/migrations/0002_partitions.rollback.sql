-- Undo 0002: pg_partman forgets system_status_history (the table and its
-- partitions go with 0001's rollback). The extension itself stays: other
-- tables may use it.

DO $$
DECLARE
    v_schema name := pystatus.partman_schema();
    v_template text;
BEGIN
    EXECUTE format('SELECT template_table FROM %I.part_config WHERE parent_table = $1', v_schema)
        INTO v_template USING 'public.system_status_history';
    EXECUTE format('DELETE FROM %I.part_config WHERE parent_table = $1', v_schema)
        USING 'public.system_status_history';
    IF v_template IS NOT NULL THEN
        EXECUTE format('DROP TABLE IF EXISTS %s', v_template);
    END IF;
END;
$$;

DROP FUNCTION pystatus.record_heartbeat(text, text, text, timestamptz);
DROP FUNCTION pystatus.move_default_rows();
DROP FUNCTION pystatus.maintain();
DROP FUNCTION pystatus.history_default_rows();
DROP FUNCTION pystatus.set_history_retention(interval);
DROP FUNCTION pystatus.history_retention();
DROP VIEW pystatus.history_partitions;
DROP FUNCTION pystatus.partman_schema();
