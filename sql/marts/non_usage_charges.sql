-- Credits, tax, purchases and adjustments from provider invoices, reported beside usage
-- (never spread into it).
DELETE FROM marts.non_usage_charges WHERE day BETWEEN $start AND $end;
INSERT INTO marts.non_usage_charges
SELECT day, x_Provider, x_Account, ChargeCategory, ChargeClass, ChargeDescription, BilledCost,
       BillingCurrency, x_SourceFile, x_SourceLine
FROM staging.invoice_lines
WHERE day BETWEEN $start AND $end AND x_Provider <> '_platform' AND ChargeCategory <> 'Usage';
