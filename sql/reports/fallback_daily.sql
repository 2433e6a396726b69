-- Fallback share of served requests per day (the "fallback-heavy day" finder).
SELECT day, sum(requests) AS requests, sum(fallback_served) AS fallback_served,
       sum(rate_limit_hits) AS rate_limit_hits, sum(errors) AS errors
FROM marts.routing_health
WHERE day BETWEEN $start AND $end
GROUP BY day
ORDER BY day
