-- Budget periods overlapping [$start, $end], as last evaluated by `byok-ledger alerts`.
SELECT budget_id, scope, match, period, period_start, period_end, as_of, spent_usd, limit_usd,
       pct, forecast_usd, is_current
FROM marts.budget_status
WHERE period_start <= $end AND period_end >= $start
ORDER BY pct DESC, budget_id, period_start
