-- Largest-remainder allocation at 1e-9 USD: split each cell's `total` over its rows in proportion
-- to `weight` so that the rows' amounts sum EXACTLY to the total. Integer arithmetic in HUGEINT
-- nano-dollars; all-zero weights share equally; ties go to the lower row_id.
-- In: TEMP _alloc_in(cell_id, row_id, weight, total). Out: TEMP _alloc_out(row_id, cell_id, allocated).
CREATE OR REPLACE TEMP TABLE _alloc_out AS
WITH w AS (
    SELECT cell_id, row_id, total,
           greatest(CAST(weight * 1000000000 AS HUGEINT), CAST(0 AS HUGEINT)) AS wn
    FROM _alloc_in
), s AS (
    SELECT *, sum(wn) OVER (PARTITION BY cell_id) AS wsum, count(*) OVER (PARTITION BY cell_id) AS n
    FROM w
), e AS (
    SELECT cell_id, row_id,
           CASE WHEN wsum = 0 THEN CAST(1 AS HUGEINT) ELSE wn END AS wn,
           CASE WHEN wsum = 0 THEN CAST(n AS HUGEINT) ELSE CAST(wsum AS HUGEINT) END AS wsum,
           CAST(abs(total) * 1000000000 AS HUGEINT) AS units,
           CASE WHEN total < 0 THEN -1 ELSE 1 END AS sign
    FROM s
), f AS (
    SELECT *, (units * wn) // wsum AS base, (units * wn) % wsum AS rem FROM e
), r AS (
    SELECT *,
           units - sum(base) OVER (PARTITION BY cell_id) AS leftover,
           row_number() OVER (PARTITION BY cell_id ORDER BY rem DESC, row_id) AS rnk
    FROM f
)
SELECT row_id, cell_id,
       CAST(CAST(sign * (base + CASE WHEN rnk <= leftover THEN 1 ELSE 0 END) AS DECIMAL(38, 0))
            * CAST(0.000000001 AS DECIMAL(38, 9)) AS DECIMAL(38, 9)) AS allocated
FROM r;
