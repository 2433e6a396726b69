-- Which provider x account x day an arrived (or refused) invoice export covers, derived from
-- what was loaded while staging.invoice_coverage does not exist: a provider's export is
-- organisation-wide, so any line of a provider on a day covers all its accounts (account
-- NULL); a file whose latest load in raw.load_manifest was refused covers its days as
-- unreadable.
CREATE OR REPLACE TEMP TABLE _rc_coverage AS
SELECT day, x_Provider AS provider, CAST(NULL AS VARCHAR) AS account, 'arrived' AS status,
       string_agg(DISTINCT x_SourceFile, ', ' ORDER BY x_SourceFile) AS file
FROM staging.invoice_lines
WHERE day BETWEEN $wstart AND $wend AND x_Provider <> '_platform'
GROUP BY day, x_Provider;
