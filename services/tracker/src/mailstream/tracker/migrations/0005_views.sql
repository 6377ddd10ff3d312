-- What other services read of the tracker's tables: these views are the interface.

-- The gateway and the renderer: why an address of an account gets no (MARKETING) mail.
CREATE VIEW suppression_reasons AS
    SELECT account_id, address, reason FROM suppressions;

-- The gateway's status endpoint: where each send stands.
CREATE VIEW send_outcome_statuses AS
    SELECT status_id, account_id, status, send_result, started_at, completed_at, event_id, event_created
    FROM send_outcomes;

-- The gateway's statistics endpoints.
CREATE VIEW stats_counters AS
    SELECT * FROM stats;
