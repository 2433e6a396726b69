-- Expected (logs' provider_usd on BYOK keys) vs billed (invoice Usage lines, corrections
-- included for their ChargePeriod) per day x provider x account x upstream_model, with status,
-- likely cause and explanation (TEMP _rc_out from reconciliation_causes.sql).
DELETE FROM marts.reconciliation_daily WHERE day BETWEEN $start AND $end;
INSERT INTO marts.reconciliation_daily BY NAME
SELECT * FROM _rc_out;
