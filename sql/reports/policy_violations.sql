-- Requests that broke policy (expected: none).
SELECT day, request_id, violation, explanation, api_key_id, workload, model, provider, key_id
FROM marts.policy_violations
WHERE day BETWEEN $start AND $end
ORDER BY day, request_id
LIMIT 100
