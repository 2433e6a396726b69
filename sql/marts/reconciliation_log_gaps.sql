-- Hours in which a normally active request-log writer (the log file name, e.g. router-2.jsonl)
-- wrote nothing, for the days [$start, $end]. A gap is a run of empty hours of a writer that
-- has lines in at least 12 of that day's 24 UTC hours, with the hour just before AND just after
-- the run both holding at least 5 lines and at least half the writer's median hourly lines:
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
WHERE least(b.lines, a.lines) >= greatest(5, s.typical_lines_per_hour / 2);

-- The estimated cost each gap hides, per reconciliation cell: the writer's average hourly
-- BYOK provider_usd in that cell on that day (over its active hours) times the gap's hours.
CREATE OR REPLACE TEMP TABLE _rc_gap_cells AS
WITH acct AS (
    SELECT DISTINCT day, provider, upstream_model, key_id, account
    FROM intermediate.request_groups
    WHERE day BETWEEN $start AND $end AND credential = 'byok'
), writer_cell AS (
    SELECT w.day, w.writer, w.provider, a.account, w.upstream_model, sum(w.provider_usd) AS usd
    FROM _rc_writer_hours w
    JOIN acct a ON a.day = w.day AND a.provider = w.provider AND a.key_id = w.key_id
     AND a.upstream_model IS NOT DISTINCT FROM w.upstream_model
    WHERE w.credential = 'byok'
    GROUP BY ALL
)
SELECT c.day, c.provider, c.account, c.upstream_model,
       -- Whole nanodollars (money never passes through a float).
       CAST(CAST(sum(CAST(c.usd * 1000000000 AS HUGEINT) * g.hours // g.active_hours) AS DECIMAL(38, 0))
            * CAST(0.000000001 AS DECIMAL(38, 9)) AS DECIMAL(38, 9)) AS estimated_gap_usd,
       string_agg(g.writer || ' ' || strftime(g.gap_start, '%H:%M') || '–' || strftime(g.gap_end - INTERVAL 1 SECOND, '%H') || ':59'
                  || ' UTC (' || g.hours || ' h)', '; ' ORDER BY g.writer, g.gap_start) AS log_gap
FROM writer_cell c
JOIN _rc_gaps g ON g.day = c.day AND g.writer = c.writer
GROUP BY ALL;
