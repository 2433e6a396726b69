-- Routing health per provider x key over [$start, $end] (reads: provider, key_id, credential,
-- requests, attempts, served, errors, rate_limit_hits, fallback_served). Fallback rate is
-- fallback_served / served: of the requests this key served, how many were a fallback.
SELECT
    provider,
    coalesce(key_id, '(shared capacity)') AS key_id,
    credential,
    sum(requests) AS requests,
    sum(attempts) AS attempts,
    sum(served) AS served,
    sum(errors) AS errors,
    sum(rate_limit_hits) AS rate_limit_hits,
    sum(fallback_served) AS fallback_served
FROM marts.routing_health
WHERE day BETWEEN $start AND $end
GROUP BY ALL
ORDER BY rate_limit_hits DESC, requests DESC, provider, key_id
