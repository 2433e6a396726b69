-- Lines read and lines rejected (torn last lines excepted) for the days, all log sources.
SELECT coalesce(sum(lines_read), 0), coalesce(sum(rejected - torn), 0)
FROM raw.load_stats
WHERE day BETWEEN $start AND $end
