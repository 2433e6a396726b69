-- Lines read and lines quarantined (torn last lines excepted) for the days' dt= folders,
-- every log source (request logs, OpenRouter generations, outcomes).
SELECT coalesce(sum(lines_read), 0), coalesce(sum(rejected - torn), 0)
FROM raw.load_stats
WHERE day BETWEEN $start AND $end
