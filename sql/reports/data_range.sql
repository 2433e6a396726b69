-- First and last UTC day with billing rows.
SELECT min(day), max(day) FROM marts.split_billing_daily
