-- Fallback share of served requests per day (the "fallback-heavy day" finder). A request is
-- served once, so served sums across keys without double counting (requests would not).
SELECT day, sum(served) AS served, sum(fallback_served) AS fallback_served,
       sum(rate_limit_hits) AS rate_limit_hits, sum(errors) AS errors
FROM marts.routing_health
WHERE day BETWEEN $start AND $end
GROUP BY day
ORDER BY day
