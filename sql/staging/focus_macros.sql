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
-- A timestamp in UTC (naive TIMESTAMP): one with an offset after its date (Z, +05:00, -0800,
-- UTC) is converted; one without is UTC already (FOCUS dates are UTC). The session time zone
-- plays no part: a text with an offset casts to the same instant in any zone.
CREATE OR REPLACE TEMP MACRO _focus_ts(t) AS
    CASE
        WHEN upper(t) LIKE '%Z' OR upper(t) LIKE '%UTC'
             OR strpos(substr(t, 11), '+') > 0 OR strpos(substr(t, 11), '-') > 0
            THEN TRY_CAST(upper(t) AS TIMESTAMPTZ) AT TIME ZONE 'UTC'
        ELSE TRY_CAST(t AS TIMESTAMP)
    END;
