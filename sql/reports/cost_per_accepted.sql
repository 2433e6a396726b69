-- Cost per accepted output by workload and model over [$start, $end]; total cost includes
-- failed attempts, retries, fallbacks and rejected outputs, so it is recomputed from the sums.
SELECT
    coalesce(workload, '(none)') AS workload,
    coalesce(model, '(none)') AS model,
    sum(requests) AS requests,
    sum(workflows) AS workflows,
    sum(accepted) AS accepted,
    sum(total_cost_usd) AS total_cost_usd,
    CASE WHEN sum(accepted) > 0 THEN sum(total_cost_usd) / sum(accepted) END AS cost_per_accepted_usd
FROM marts.cost_per_accepted_output
WHERE period BETWEEN $start AND $end
GROUP BY ALL
ORDER BY workload, total_cost_usd DESC
