-- Invoice and statement cost that no logged request explains (kept, never dropped).
DELETE FROM marts.unattributed_usage WHERE day BETWEEN $start AND $end;
INSERT INTO marts.unattributed_usage
SELECT day, source, provider, account, upstream_model, model, key_id, billed_usd, invoice_lines,
       source_files, reason, likely_cause, explanation
FROM _unattributed;
