-- Undo 0003_alerts: the alert tables and maintenance windows, with their
-- functions. live_status is dropped too (it gained a column the
-- version before cannot remove): run `pystatus migrate` of the version you
-- return to, which re-applies its definitions (the record of applied
-- definitions is cleared for that).

SET LOCAL search_path = pg_catalog, pg_temp;

DROP VIEW IF EXISTS pystatus.live_status;
DO $$
DECLARE
    v_function regprocedure;
BEGIN
    FOR v_function IN
        SELECT p.oid FROM pg_proc AS p
        WHERE p.pronamespace = 'pystatus'::regnamespace
          AND p.proname IN ('_is_time_zone', '_check_service_pattern', 'maintenance_occurrences', '_maintenance_ranges',
                            '_rollups_recomputable_from', '_windows_changed', 'add_maintenance', 'snooze',
                            'remove_maintenance', '_alerts_channel', '_record_status_event', '_channel_options',
                            'add_alert_channel', 'remove_alert_channel', '_mask_secrets', 'alert_channel_list',
                            'add_alert_rule', 'remove_alert_rule', '_alert_body', '_queue_alert', '_raw_status_at', '_spell_began',
                            'alert_sweep', 'metrics', '_refresh_uptime_windows',
                            'evaluate_alerts', '_alert_give_up_after', 'claim_alert_messages',
                            'finish_alert_attempt', 'send_test_alert', 'alert_log', '_expire_alerts')
    LOOP
        -- CASCADE: the trigger on maintenance_windows, dropped with it below.
        EXECUTE format('DROP FUNCTION %s CASCADE', v_function);
    END LOOP;
END;
$$;

DROP TABLE pystatus.uptime_windows, pystatus.alerts_progress, pystatus.maintenance_windows, pystatus.alert_attempts,
    pystatus.alert_messages, pystatus.alert_state, pystatus.alert_rules, pystatus.alert_channels,
    pystatus.status_events;

DELETE FROM pystatus.definitions_applied;
