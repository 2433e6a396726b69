INSERT OR REPLACE INTO marts.budget_status
    (budget_id, scope, match, period, period_start, period_end, as_of, spent_usd, limit_usd,
     pct, forecast_usd, is_current, evaluated_at)
VALUES ($budget_id, $scope, $match, $period, $period_start, $period_end, $as_of, $spent_usd,
        $limit_usd, $pct, $forecast_usd, $is_current, $evaluated_at)
