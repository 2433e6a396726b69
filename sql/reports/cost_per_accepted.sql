-- Cost per accepted output by workload and model over [$start, $end]; total cost includes
-- failed attempts, retries, fallbacks and rejected outputs, so it is recomputed from the sums.
SELECT
    coalesce(workload, '(none)') AS workload,
    coalesce(model, '(none)') AS model,
    sum(requests) AS requests,
    sum(workflows) AS workflows,
    sum(accepted) AS accepted,
    sum(total_cost_usd) AS total_cost_usd,
    -- Exact decimal division in whole nanodollars (DuckDB would divide DECIMALs in DOUBLE).
    CASE WHEN sum(accepted) > 0
         THEN CAST((CAST(sum(total_cost_usd) * 1000000000 AS HUGEINT) * 2 + sum(accepted))
                   // (2 * sum(accepted)) AS DECIMAL(38, 0)) * CAST(0.000000001 AS DECIMAL(38, 9))
    END AS cost_per_accepted_usd
FROM marts.cost_per_accepted_output
WHERE period BETWEEN $start AND $end
GROUP BY ALL
ORDER BY workload, total_cost_usd DESC
