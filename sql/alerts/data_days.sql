-- The UTC days that have any billing rows between $start and $end (inclusive). A day without
-- rows is "no data", not "zero spend", so baselines are built over these days only.
SELECT DISTINCT day FROM marts.split_billing_daily WHERE day BETWEEN $start AND $end ORDER BY day
