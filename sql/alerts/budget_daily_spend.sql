-- Daily spend (total_usd: provider + platform fee + shared credits) of one budget's scope,
-- between $start and $end inclusive. $scope selects the column the budget's $match applies to.
-- A member's budget also covers API keys the member owns ($owner_keys) when a row names no
-- member. byok_key matches the BYOK key that served the request (key_id).
SELECT day, SUM(total_usd) AS spend
FROM marts.split_billing_daily
WHERE day BETWEEN $start AND $end
  AND CASE $scope
        WHEN 'api_key' THEN api_key_id = $match
        WHEN 'environment' THEN environment = $match
        WHEN 'member' THEN member_id = $match
             OR (member_id IS NULL AND list_contains(CAST($owner_keys AS VARCHAR[]), api_key_id))
        WHEN 'workload' THEN workload = $match
        WHEN 'byok_key' THEN key_id = $match
        WHEN 'provider' THEN provider = $match
        ELSE false
      END
GROUP BY day
ORDER BY day
