-- The days [$start, $end] are now built from the current invoice files: remember them as
-- staged (a later change to their invoices makes them pending) and clear them from pending.
DELETE FROM raw.invoice_pending_days WHERE day BETWEEN $start AND $end;
DELETE FROM raw.invoice_staged_days WHERE day BETWEEN $start AND $end;
INSERT INTO raw.invoice_staged_days
SELECT CAST(unnest(generate_series(CAST($start AS DATE), CAST($end AS DATE), INTERVAL 1 DAY)) AS DATE);
