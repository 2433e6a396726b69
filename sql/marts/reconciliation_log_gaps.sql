-- Hours in which a normally active request-log writer (the log file name, e.g. router-2.jsonl)
-- wrote nothing, for the days [$start, $end]. A gap is a run of empty hours of a writer that
-- has lines in at least 12 of that day's 24 UTC hours, with the hour just before AND just after
-- the run both holding at least 5 lines and at least the writer's median hourly lines:
-- traffic was flowing on both sides, so an empty stretch is not chance or the quiet of the night.
-- One scan of staging.requests for the run's days, grouped to writer x hour x cell; everything
-- after works on those few aggregated rows.
CREATE OR REPLACE TEMP TABLE _rc_writer_hours AS
SELECT day, regexp_replace(source_file, '^.*[/\\]', '') AS writer, hour(ts) AS h,
       provider, upstream_model, key_id, credential,
       count(*) AS lines, coalesce(sum(provider_usd), 0) AS provider_usd
FROM staging.requests
WHERE day BETWEEN $start AND $end AND log_source = 'router'
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _rc_gaps AS
WITH per_hour AS (
    SELECT day, writer, h, sum(lines) AS lines FROM _rc_writer_hours GROUP BY ALL
), writer_day AS (
    SELECT day, writer, count(*) AS active_hours,
           CAST(median(lines) AS BIGINT) AS typical_lines_per_hour
    FROM per_hour GROUP BY ALL
    HAVING count(*) >= 12
), empty_hours AS (
    SELECT w.day, w.writer, w.active_hours, w.typical_lines_per_hour, CAST(g.h AS BIGINT) AS h
    FROM writer_day w, (SELECT unnest(range(24)) AS h) g
    WHERE NOT EXISTS (SELECT 1 FROM per_hour p WHERE p.day = w.day AND p.writer = w.writer AND p.h = g.h)
), runs AS (
    SELECT *, h - row_number() OVER (PARTITION BY day, writer ORDER BY h) AS grp FROM empty_hours
), spans AS (
    SELECT day, writer, grp, min(h) AS h0, max(h) AS h1, count(*) AS hours,
           any_value(typical_lines_per_hour) AS typical_lines_per_hour,
           any_value(active_hours) AS active_hours
    FROM runs GROUP BY day, writer, grp
)
SELECT s.day, s.writer, CAST(s.day AS TIMESTAMP) + INTERVAL 1 HOUR * s.h0 AS gap_start,
       CAST(s.day AS TIMESTAMP) + INTERVAL 1 HOUR * (s.h1 + 1) AS gap_end,
       CAST(s.hours AS INTEGER) AS hours, s.typical_lines_per_hour,
       CAST(s.active_hours AS INTEGER) AS active_hours
FROM spans s
JOIN per_hour b ON b.day = s.day AND b.writer = s.writer AND b.h = s.h0 - 1
JOIN per_hour a ON a.day = s.day AND a.writer = s.writer AND a.h = s.h1 + 1
WHERE least(b.lines, a.lines) >= greatest(5, s.typical_lines_per_hour);

-- The estimated cost each gap hides, per reconciliation cell: the writer's cost in that cell in
-- the hour just before and just after the gap, averaged, times the gap's hours (traffic has a
-- daily rhythm: a day-wide average would underestimate a gap at the busiest hours).
CREATE OR REPLACE TEMP TABLE _rc_gap_cells AS
WITH acct AS (
    SELECT DISTINCT day, provider, upstream_model, key_id, account
    FROM intermediate.request_groups
    WHERE day BETWEEN $start AND $end AND credential = 'byok'
), writer_cell_hour AS (
    SELECT w.day, w.writer, w.provider, a.account, w.upstream_model, w.h, sum(w.provider_usd) AS usd
    FROM _rc_writer_hours w
    JOIN acct a ON a.day = w.day AND a.provider = w.provider AND a.key_id = w.key_id
     AND a.upstream_model IS NOT DISTINCT FROM w.upstream_model
    WHERE w.credential = 'byok'
    GROUP BY ALL
), cells AS (
    SELECT DISTINCT day, writer, provider, account, upstream_model FROM writer_cell_hour
), per_gap AS (
    SELECT c.day, c.provider, c.account, c.upstream_model, g.writer, g.gap_start, g.gap_end, g.hours,
           -- Whole nanodollars (money never passes through a float).
           (coalesce(CAST(b.usd * 1000000000 AS HUGEINT), 0) + coalesce(CAST(a.usd * 1000000000 AS HUGEINT), 0))
           * g.hours // 2 AS est_nano
    FROM cells c
    JOIN _rc_gaps g ON g.day = c.day AND g.writer = c.writer
    LEFT JOIN writer_cell_hour b
      ON b.day = c.day AND b.writer = c.writer AND b.provider = c.provider
     AND b.account IS NOT DISTINCT FROM c.account AND b.upstream_model IS NOT DISTINCT FROM c.upstream_model
     AND b.h = hour(g.gap_start) - 1
    LEFT JOIN writer_cell_hour a
      ON a.day = c.day AND a.writer = c.writer AND a.provider = c.provider
     AND a.account IS NOT DISTINCT FROM c.account AND a.upstream_model IS NOT DISTINCT FROM c.upstream_model
     AND a.h = hour(g.gap_end)
)
SELECT day, provider, account, upstream_model,
       CAST(CAST(sum(est_nano) AS DECIMAL(38, 0)) * CAST(0.000000001 AS DECIMAL(38, 9)) AS DECIMAL(38, 9))
           AS estimated_gap_usd,
       string_agg(writer || ' ' || strftime(gap_start, '%H:%M') || '–' || strftime(gap_end - INTERVAL 1 SECOND, '%H') || ':59'
                  || ' UTC (' || hours || ' h)', '; ' ORDER BY writer, gap_start) AS log_gap
FROM per_gap
GROUP BY ALL;
