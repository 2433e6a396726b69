-- Coverage as the invoice loader records it: one row per day x provider x account (NULL =
-- every account of the provider) x file, status arrived | unreadable.
CREATE OR REPLACE TEMP TABLE _rc_coverage AS
SELECT day, provider, account, status, file
FROM staging.invoice_coverage
WHERE day BETWEEN $wstart AND $wend AND provider <> '_platform';
