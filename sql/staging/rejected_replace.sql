-- Replace the rejected lines and load counts of one source for the days [$start, $end].
DELETE FROM raw.rejected_records WHERE source = $source AND day BETWEEN $start AND $end;
DELETE FROM raw.load_stats WHERE source = $source AND day BETWEEN $start AND $end;
INSERT INTO raw.rejected_records SELECT * FROM _rejects WHERE source = $source;
INSERT INTO raw.load_stats SELECT * FROM _stats WHERE source = $source;
