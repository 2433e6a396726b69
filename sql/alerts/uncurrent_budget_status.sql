-- Before this run writes its rows, no earlier period is "current" any more.
UPDATE marts.budget_status SET is_current = false WHERE is_current
