-- "Now" for alert evaluation: the last UTC day present in the marts (simulated data may lie
-- in the past or the future, so the wall clock is not used).
SELECT max(day) FROM marts.split_billing_daily
