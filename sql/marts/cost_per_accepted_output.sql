-- Cost per accepted output per day x workload x environment x model. Cost is the split-billing
-- total (billed where invoiced, estimated otherwise) of EVERY request: failed ones, retries,
-- fallbacks and rejected outputs included. An output unit is a workflow (requests sharing a
-- workflow_id) or a single request without one; the last outcome event for the unit wins
-- (events naming the workflow or any of its requests); the unit counts where its last request
-- was made. Aggregations, not window sorts: this runs over every request of the days.
DELETE FROM marts.cost_per_accepted_output WHERE period BETWEEN $start AND $end;
INSERT INTO marts.cost_per_accepted_output
WITH cost AS (
    SELECT day, workload, environment, model, sum(requests) AS requests,
           sum(total_usd) AS total_cost_usd
    FROM marts.split_billing_daily
    WHERE day BETWEEN $start AND $end AND attribution = 'logged'
    GROUP BY ALL
), req AS (
    SELECT day, request_id, ts, workload, environment,
           coalesce(model, requested_models[1]) AS model, workflow_id, status, fallback_used
    FROM staging.requests
    WHERE day BETWEEN $start AND $end
), ev AS (
    SELECT request_id, workflow_id, accepted, ts, event_id FROM staging.outcomes
    WHERE day >= $start
), req_verdict AS (      -- requests without a workflow: their own last event
    SELECT e.request_id, max_by(e.accepted, struct_pack(t := e.ts, id := e.event_id)) AS accepted
    FROM ev e
    WHERE e.request_id IS NOT NULL
    GROUP BY e.request_id
), wf_events AS (
    SELECT workflow_id, accepted, ts, event_id FROM ev WHERE workflow_id IS NOT NULL
    UNION ALL
    SELECT r.workflow_id, e.accepted, e.ts, e.event_id
    FROM ev e JOIN req r ON r.workflow_id IS NOT NULL AND e.request_id = r.request_id
), wf_verdict AS (
    SELECT workflow_id, max_by(accepted, struct_pack(t := ts, id := event_id)) AS accepted
    FROM wf_events GROUP BY workflow_id
), wf_last AS (          -- the request that ends each workflow
    SELECT workflow_id,
           max_by(struct_pack(day := day, workload := workload, environment := environment,
                              model := model),
                  struct_pack(t := ts, id := request_id)) AS g
    FROM req WHERE workflow_id IS NOT NULL GROUP BY workflow_id
), outputs AS (
    SELECT r.day, r.workload, r.environment, r.model, v.accepted
    FROM req r LEFT JOIN req_verdict v USING (request_id)
    WHERE r.workflow_id IS NULL
    UNION ALL
    SELECT l.g.day, l.g.workload, l.g.environment, l.g.model, v.accepted
    FROM wf_last l LEFT JOIN wf_verdict v USING (workflow_id)
), units AS (
    SELECT day, workload, environment, model,
           count(*) AS outputs,
           count(*) FILTER (WHERE accepted) AS accepted,
           count(*) FILTER (WHERE NOT accepted) AS rejected,
           count(*) FILTER (WHERE accepted IS NULL) AS no_outcome
    FROM outputs GROUP BY ALL
), reqs AS (
    SELECT day, workload, environment, model,
           count(DISTINCT workflow_id) AS workflows,
           count(*) FILTER (WHERE status = 'error') AS failed_requests,
           count(*) FILTER (WHERE fallback_used) AS fallback_requests
    FROM req GROUP BY ALL
)
SELECT c.day, c.workload, c.environment, c.model, c.requests, coalesce(q.workflows, 0),
       coalesce(u.accepted, 0), c.total_cost_usd,
       CASE WHEN coalesce(u.accepted, 0) > 0
            -- DuckDB divides DECIMALs in DOUBLE: divide whole nanodollars instead (half up,
            -- costs are never negative) so money never passes through a float.
            THEN CAST((CAST(c.total_cost_usd * 1000000000 AS HUGEINT) * 2 + u.accepted)
                      // (2 * u.accepted) AS DECIMAL(38, 0)) * CAST(0.000000001 AS DECIMAL(38, 9))
       END,
       coalesce(u.outputs, 0), coalesce(u.rejected, 0), coalesce(u.no_outcome, 0),
       coalesce(q.failed_requests, 0), coalesce(q.fallback_requests, 0)
FROM cost c
LEFT JOIN units u ON u.day = c.day AND u.workload IS NOT DISTINCT FROM c.workload
 AND u.environment IS NOT DISTINCT FROM c.environment AND u.model IS NOT DISTINCT FROM c.model
LEFT JOIN reqs q ON q.day = c.day AND q.workload IS NOT DISTINCT FROM c.workload
 AND q.environment IS NOT DISTINCT FROM c.environment AND q.model IS NOT DISTINCT FROM c.model;
