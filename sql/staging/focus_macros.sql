-- Helpers of sql/staging/focus_rows.sql (TEMP: they live only on the loading connection).
-- A FOCUS null: empty, or a literal NULL / None / N/A in any case.
CREATE OR REPLACE TEMP MACRO _focus_null(v) AS
    CASE WHEN lower(trim(v)) IN ('', 'null', 'none', 'n/a') THEN NULL ELSE trim(v) END;
-- A plain decimal number (scientific notation allowed) cast to DECIMAL(38,9), else NULL: no
-- digit separators, hex or NaN/Infinity (DuckDB's own cast accepts `1_000`).
CREATE OR REPLACE TEMP MACRO _focus_money(t) AS
    CASE WHEN regexp_full_match(t, '[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,4})?')
         THEN TRY_CAST(t AS DECIMAL(38, 9)) END;
-- Why a non-null amount text did not cast.
CREATE OR REPLACE TEMP MACRO _focus_money_problem(t) AS
    CASE
        WHEN lower(t) IN ('nan', '+nan', '-nan', 'inf', '+inf', '-inf', 'infinity', '+infinity',
                          '-infinity') THEN 'not_finite'
        WHEN regexp_full_match(t, '[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?')
            THEN 'out_of_range'
        ELSE 'not_a_number'
    END;
-- A timestamp in UTC (naive TIMESTAMP): an offset (Z, +05:00, UTC) is converted; a timestamp
-- without one is UTC already (FOCUS dates are UTC). The session time zone plays no part.
CREATE OR REPLACE TEMP MACRO _focus_ts(t) AS
    CASE
        WHEN regexp_matches(upper(t), '[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)? *(Z|[+-][0-9]{2}(:?[0-9]{2})?|UTC)$')
            THEN TRY_CAST(upper(t) AS TIMESTAMPTZ) AT TIME ZONE 'UTC'
        ELSE TRY_CAST(t AS TIMESTAMP)
    END;
