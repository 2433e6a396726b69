-- Cost per accepted output per day x workload x environment x model. Cost is the split-billing
-- total (billed where invoiced, estimated otherwise) of EVERY request: failed ones, retries,
-- fallbacks and rejected outputs included. An output unit is a workflow (when the request has
-- a workflow_id) or a single request; the last outcome event for the unit wins (events naming
-- the workflow or any of its requests); the unit counts where its last request was made.
DELETE FROM marts.cost_per_accepted_output WHERE period BETWEEN $start AND $end;
INSERT INTO marts.cost_per_accepted_output
WITH cost AS (
    SELECT day, workload, environment, model, sum(requests) AS requests,
           sum(total_usd) AS total_cost_usd
    FROM marts.split_billing_daily
    WHERE day BETWEEN $start AND $end AND attribution = 'logged'
    GROUP BY ALL
), req AS (
    SELECT day, request_id, ts, workload, environment, coalesce(model, requested_models[1]) AS model,
           workflow_id, status, fallback_used,
           coalesce('w:' || workflow_id, 'r:' || request_id) AS unit
    FROM staging.requests
    WHERE day BETWEEN $start AND $end
), last_req AS (
    SELECT unit, day, workload, environment, model FROM req
    QUALIFY row_number() OVER (PARTITION BY unit ORDER BY ts DESC, request_id DESC) = 1
), events AS (
    SELECT r.unit, o.ts, o.event_id, o.accepted
    FROM staging.outcomes o JOIN req r ON o.request_id = r.request_id
    WHERE o.day >= $start
    UNION ALL
    SELECT DISTINCT r.unit, o.ts, o.event_id, o.accepted
    FROM staging.outcomes o JOIN req r ON r.workflow_id IS NOT NULL AND o.workflow_id = r.workflow_id
    WHERE o.day >= $start
), verdict AS (
    SELECT unit, accepted FROM events
    QUALIFY row_number() OVER (PARTITION BY unit ORDER BY ts DESC, event_id DESC) = 1
), units AS (
    SELECT l.day, l.workload, l.environment, l.model,
           count(*) AS outputs,
           count(*) FILTER (WHERE v.accepted) AS accepted,
           count(*) FILTER (WHERE NOT v.accepted) AS rejected,
           count(*) FILTER (WHERE v.unit IS NULL) AS no_outcome
    FROM last_req l LEFT JOIN verdict v USING (unit)
    GROUP BY ALL
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
            THEN CAST(c.total_cost_usd / u.accepted AS DECIMAL(38, 9)) END,
       coalesce(u.outputs, 0), coalesce(u.rejected, 0), coalesce(u.no_outcome, 0),
       coalesce(q.failed_requests, 0), coalesce(q.fallback_requests, 0)
FROM cost c
LEFT JOIN units u ON u.day = c.day AND u.workload IS NOT DISTINCT FROM c.workload
 AND u.environment IS NOT DISTINCT FROM c.environment AND u.model IS NOT DISTINCT FROM c.model
LEFT JOIN reqs q ON q.day = c.day AND q.workload IS NOT DISTINCT FROM c.workload
 AND q.environment IS NOT DISTINCT FROM c.environment AND q.model IS NOT DISTINCT FROM c.model;
