-- Replace the days [$start, $end] of staging.invoice_lines from TEMP _inv_in (every parsed line).
-- The same line in two files (a page downloaded twice) counts once: the first file keeps it.
DELETE FROM staging.invoice_lines WHERE day BETWEEN $start AND $end;
INSERT INTO staging.invoice_lines
SELECT * FROM _inv_in
WHERE day BETWEEN $start AND $end
QUALIFY x_SourceFile = min(x_SourceFile) OVER (
    PARTITION BY day, x_Provider, BilledCost, ChargePeriodStart, ChargePeriodEnd, ChargeCategory,
                 ChargeClass, x_Account, x_UpstreamModel, x_TokenType, SkuMeter, ConsumedQuantity,
                 x_Model, x_StatementProvider, ResourceId, ChargeDescription, x_ServiceTier
);
