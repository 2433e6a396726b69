-- Which marts exist: the report reads optional ones (alerts, routing health...) only if built.
SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts'
