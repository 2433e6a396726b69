-- Budget spend per evaluated period (current period and recent closed ones). Times are UTC.
CREATE TABLE IF NOT EXISTS marts.budget_status (
    budget_id    VARCHAR NOT NULL,
    scope        VARCHAR NOT NULL,   -- api_key | environment | member | workload | byok_key | provider
    match        VARCHAR NOT NULL,
    period       VARCHAR NOT NULL,   -- daily | weekly | monthly
    period_start DATE NOT NULL,
    period_end   DATE NOT NULL,
    as_of        DATE NOT NULL,      -- last day of data counted
    spent_usd    DECIMAL(38, 9) NOT NULL,
    limit_usd    DECIMAL(38, 9) NOT NULL,
    pct          DECIMAL(18, 4) NOT NULL,
    forecast_usd DECIMAL(38, 9),     -- period-end spend at the current run rate; NULL once closed
    is_current   BOOLEAN NOT NULL,
    evaluated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (budget_id, period_start)
)
