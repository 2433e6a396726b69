-- Credits, tax and adjustments: reported beside the usage totals, never inside them.
SELECT provider, charge_category, currency, count(*) AS lines, sum(billed_usd) AS billed_usd
FROM marts.non_usage_charges
WHERE day BETWEEN $start AND $end
GROUP BY ALL
ORDER BY provider, charge_category
