-- Routing health per day x provider x BYOK key (or shared) from every attempt: error rate,
-- rate-limit hits, fallbacks, and the provider's BYOK vs shared share of served requests.
-- `requests` counts a request once per route even when it tried the route twice: an attempt
-- is "first" when no earlier attempt of the same request used the same route.
DELETE FROM marts.routing_health WHERE day BETWEEN $start AND $end;
INSERT INTO marts.routing_health
WITH att AS (
    SELECT day, fallback_used, a.provider, a.key_id, a.credential, a.status,
           CASE WHEN i = 1 THEN true
                ELSE NOT list_contains(
                    list_transform(attempts[1:i - 1],
                                   lambda x: struct_pack(p := x.provider, k := x.key_id, c := x.credential)),
                    struct_pack(p := a.provider, k := a.key_id, c := a.credential)) END AS first_on_route
    FROM (SELECT day, fallback_used, attempts, unnest(attempts) AS a,
                 unnest(generate_series(1, len(attempts))) AS i
          FROM staging.requests WHERE day BETWEEN $start AND $end AND n_attempts > 0)
    UNION ALL
    -- Records without an attempt list (e.g. OpenRouter generations): the served route.
    SELECT day, fallback_used, provider, key_id, credential,
           CASE WHEN status = 'ok' THEN 'ok' ELSE 'error' END, true
    FROM staging.requests
    WHERE day BETWEEN $start AND $end AND n_attempts = 0 AND provider IS NOT NULL
), g AS (
    SELECT day, provider, key_id, credential,
           count(*) FILTER (WHERE first_on_route) AS requests,
           count(*) AS attempts,
           count(*) FILTER (WHERE status = 'ok') AS served,
           count(*) FILTER (WHERE status NOT IN ('ok', 'rate_limited')) AS errors,
           count(*) FILTER (WHERE status = 'rate_limited') AS rate_limit_hits,
           count(*) FILTER (WHERE status = 'ok' AND fallback_used) AS fallback_served
    FROM att GROUP BY ALL
), p AS (
    SELECT *, sum(served) OVER (PARTITION BY day, provider) AS provider_served,
           sum(served) FILTER (WHERE credential = 'byok') OVER (PARTITION BY day, provider) AS byok_served
    FROM g
)
SELECT day, provider, key_id, credential, requests, attempts, served, errors, rate_limit_hits,
       fallback_served,
       CAST(errors / attempts AS DECIMAL(9, 6)),
       CAST(rate_limit_hits / attempts AS DECIMAL(9, 6)),
       CAST(CASE WHEN served > 0 THEN fallback_served / served END AS DECIMAL(9, 6)),
       CAST(CASE WHEN provider_served > 0 THEN coalesce(byok_served, 0) / provider_served END AS DECIMAL(9, 6)),
       CAST(CASE WHEN provider_served > 0 THEN 1 - coalesce(byok_served, 0) / provider_served END AS DECIMAL(9, 6))
FROM p;
