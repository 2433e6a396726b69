-- The alert ledger: one row per alert ever found. alert_id is deterministic (kind, scope,
-- period, threshold), so an alert is recorded once however often evaluation runs; a row with
-- delivered_at NULL is retried on the next run. Times are UTC.
CREATE TABLE IF NOT EXISTS marts.alerts (
    alert_id     VARCHAR PRIMARY KEY,
    created_at   TIMESTAMP NOT NULL,
    kind         VARCHAR NOT NULL,   -- budget_threshold | budget_forecast | anomaly
    scope        VARCHAR NOT NULL,   -- e.g. api_key:public-chat-prod
    period       VARCHAR NOT NULL,   -- e.g. monthly:2026-11-01, day:2026-11-20
    severity     VARCHAR NOT NULL,   -- info | warning | critical
    message      VARCHAR NOT NULL,
    payload      JSON NOT NULL,
    delivered_at TIMESTAMP,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   VARCHAR
)
