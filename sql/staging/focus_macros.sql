-- Helpers of sql/staging/focus_rows.sql (TEMP: they live only on the loading connection).
-- A FOCUS null: empty, or a literal NULL / None / N/A in any case.
CREATE OR REPLACE TEMP MACRO _focus_null(v) AS
    CASE WHEN lower(trim(v)) IN ('', 'null', 'none', 'n/a') THEN NULL ELSE trim(v) END;
-- A decimal number (scientific notation allowed) as DECIMAL(38,9), else NULL. DuckDB's own cast
-- also reads digit separators (`1_000`); an amount never has one. NaN/Infinity/hex: NULL.
CREATE OR REPLACE TEMP MACRO _focus_money(t) AS
    CASE WHEN strpos(t, '_') = 0 THEN TRY_CAST(t AS DECIMAL(38, 9)) END;
-- Why a non-null amount text did not cast.
CREATE OR REPLACE TEMP MACRO _focus_money_problem(t) AS
    CASE
        WHEN lower(t) IN ('nan', '+nan', '-nan', 'inf', '+inf', '-inf', 'infinity', '+infinity',
                          '-infinity') THEN 'not_finite'
        WHEN regexp_full_match(t, '[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?')
            THEN 'out_of_range'
        ELSE 'not_a_number'
    END;
-- A timestamp in UTC (naive TIMESTAMP). After its date, a text with no letter and no sign
-- has no offset: it is UTC already (FOCUS dates are UTC); a bare trailing Z is UTC too. Any
-- other zone (+05:30, -0800, UTC, a zone name) goes through TIMESTAMPTZ and is converted; a
-- plain TIMESTAMP cast would drop it silently. The session time zone plays no part: a text
-- with a zone casts to the same instant in any session zone. The common cases skip the slow
-- zone conversion.
CREATE OR REPLACE TEMP MACRO _focus_ts(t) AS
    CASE
        WHEN NOT regexp_matches(substr(t, 12), '[A-Za-z+-]') THEN TRY_CAST(t AS TIMESTAMP)
        WHEN regexp_full_match(substr(t, 12), '[0-9:. ]*[Zz]')
            THEN TRY_CAST(left(t, -1) AS TIMESTAMP)
        ELSE TRY_CAST(t AS TIMESTAMPTZ) AT TIME ZONE 'UTC'
    END;
