-- Budgets removed from the config disappear from the status mart.
DELETE FROM marts.budget_status WHERE NOT list_contains(CAST($budget_ids AS VARCHAR[]), budget_id)
