-- Reconciliation's own columns and tables, added to ledgers built before they existed (an old
-- DuckDB file keeps its data; CREATE TABLE IF NOT EXISTS alone would not add a column).
ALTER TABLE marts.reconciliation_daily ADD COLUMN IF NOT EXISTS likely_cause VARCHAR;
ALTER TABLE marts.reconciliation_daily ADD COLUMN IF NOT EXISTS explanation VARCHAR;
ALTER TABLE marts.reconciliation_daily ADD COLUMN IF NOT EXISTS tolerance_usd DECIMAL(38, 9);
ALTER TABLE marts.reconciliation_daily ADD COLUMN IF NOT EXISTS implied_factor DECIMAL(18, 6);
ALTER TABLE marts.reconciliation_daily ADD COLUMN IF NOT EXISTS cause_first_day DATE;
ALTER TABLE marts.reconciliation_daily ADD COLUMN IF NOT EXISTS suggested_account VARCHAR;
ALTER TABLE marts.reconciliation_daily ADD COLUMN IF NOT EXISTS log_gap VARCHAR;
ALTER TABLE marts.reconciliation_daily ADD COLUMN IF NOT EXISTS estimated_gap_usd DECIMAL(38, 9);
ALTER TABLE marts.unattributed_usage ADD COLUMN IF NOT EXISTS likely_cause VARCHAR;
ALTER TABLE marts.unattributed_usage ADD COLUMN IF NOT EXISTS explanation VARCHAR;
