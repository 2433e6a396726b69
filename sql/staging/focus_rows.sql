-- One pass over one FOCUS export, every row checked and typed (pipeline/sources/focus.py).
-- The caller prepends `WITH src AS (...)`: `line` plus one VARCHAR column per FOCUS column the
-- ledger reads (NULL where the file lacks it). The provider's scope comes as parameters.
-- Money stays text until a DECIMAL(38,9) cast: it never passes through a float.
, s AS (
    SELECT
        *,
        lower(_focus_null(ServiceName)) AS service_l,
        lower(_focus_null(ServiceCategory)) AS category_l,
        lower(_focus_null(ServiceSubcategory)) AS subcategory_l
    FROM src
), n AS (
    SELECT
        line,
        -- Scope: $name_regex is the service names as one anchored, case-folded pattern.
        coalesce(
            regexp_full_match(service_l, $name_regex)
            OR (
                list_contains($categories::VARCHAR[], category_l)
                AND (subcategory_l IS NULL OR $any_subcategory
                     OR list_contains($subcategories::VARCHAR[], subcategory_l))
            ),
            false
        ) AS in_scope,
        -- What every line is checked for (its count needs it) ...
        _focus_null(BilledCost) AS t_billed,
        upper(_focus_null(BillingCurrency)) AS t_currency,
        _focus_null(ChargePeriodStart) AS t_start,
        _focus_null(ChargeCategory) AS t_category,
        * EXCLUDE (line, BilledCost, BillingCurrency, ChargePeriodStart, ChargeCategory)
    FROM s
), t AS (
    SELECT
        *,
        _focus_money(t_billed) AS billed,
        _focus_ts(t_start) AS start_ts,
        CASE lower(t_category)
            WHEN 'usage' THEN 'Usage' WHEN 'purchase' THEN 'Purchase' WHEN 'tax' THEN 'Tax'
            WHEN 'credit' THEN 'Credit' WHEN 'adjustment' THEN 'Adjustment'
        END AS category,
        -- ... and what only the lines entering the ledger are (out-of-scope lines stay cheap).
        CASE WHEN in_scope THEN _focus_null(EffectiveCost) END AS t_effective,
        CASE WHEN in_scope THEN _focus_null(ListCost) END AS t_list,
        CASE WHEN in_scope THEN _focus_null(ConsumedQuantity) END AS t_quantity,
        CASE WHEN in_scope THEN _focus_null(ChargePeriodEnd) END AS t_end,
        CASE WHEN in_scope THEN _focus_null(BillingPeriodStart) END AS t_bp_start,
        CASE WHEN in_scope THEN _focus_null(BillingPeriodEnd) END AS t_bp_end,
        CASE WHEN in_scope THEN _focus_null(ChargeClass) END AS t_class,
        CASE WHEN in_scope THEN _focus_null(Tags) END AS t_tags,
        CASE WHEN in_scope THEN _focus_null(ServiceName) END AS service_name
    FROM n
), v AS (
    SELECT
        *,
        _focus_money(t_effective) AS effective,
        _focus_money(t_list) AS list_cost,
        _focus_money(t_quantity) AS quantity,
        _focus_ts(t_end) AS end_ts,
        _focus_ts(t_bp_start) AS bp_start_ts,
        _focus_ts(t_bp_end) AS bp_end_ts
    FROM t
), checked AS (
    SELECT
        *,
        -- The first problem of the row: [reason code, column, raw value].
        CASE
            WHEN _short_row THEN ['short_row', NULL, NULL]
            WHEN _long_row THEN ['long_row', NULL, NULL]
            -- Fast path for the bulk of an org export: an out-of-scope line that passes the
            -- four checks it gets (the branches below would all be false for it).
            WHEN NOT in_scope AND abs(billed) < 1000000000000000 AND t_currency = 'USD'
                 AND start_ts BETWEEN TIMESTAMP '2000-01-01' AND TIMESTAMP '2100-01-01'
                 AND category IS NOT NULL THEN NULL
            WHEN t_billed IS NULL THEN ['missing_value', 'BilledCost', NULL]
            WHEN billed IS NULL THEN [_focus_money_problem(t_billed), 'BilledCost', t_billed]
            WHEN abs(billed) >= 1000000000000000 THEN ['out_of_range', 'BilledCost', t_billed]
            WHEN t_effective IS NOT NULL AND effective IS NULL
                THEN [_focus_money_problem(t_effective), 'EffectiveCost', t_effective]
            WHEN abs(effective) >= 1000000000000000 THEN ['out_of_range', 'EffectiveCost', t_effective]
            WHEN t_list IS NOT NULL AND list_cost IS NULL
                THEN [_focus_money_problem(t_list), 'ListCost', t_list]
            WHEN abs(list_cost) >= 1000000000000000 THEN ['out_of_range', 'ListCost', t_list]
            WHEN t_currency IS NULL THEN ['missing_value', 'BillingCurrency', NULL]
            WHEN t_currency <> 'USD' THEN ['unknown_currency', 'BillingCurrency', t_currency]
            WHEN t_start IS NULL THEN ['missing_value', 'ChargePeriodStart', NULL]
            WHEN start_ts IS NULL THEN ['not_a_timestamp', 'ChargePeriodStart', t_start]
            WHEN NOT start_ts BETWEEN TIMESTAMP '2000-01-01' AND TIMESTAMP '2100-01-01'
                THEN ['out_of_range', 'ChargePeriodStart', t_start]
            WHEN t_end IS NOT NULL AND end_ts IS NULL
                THEN ['not_a_timestamp', 'ChargePeriodEnd', t_end]
            WHEN end_ts < start_ts THEN ['end_before_start', 'ChargePeriodEnd', t_end]
            WHEN end_ts > start_ts + INTERVAL 400 DAY
                THEN ['period_too_long', 'ChargePeriodEnd', t_end]
            WHEN t_bp_start IS NOT NULL AND bp_start_ts IS NULL
                THEN ['not_a_timestamp', 'BillingPeriodStart', t_bp_start]
            WHEN t_bp_end IS NOT NULL AND bp_end_ts IS NULL
                THEN ['not_a_timestamp', 'BillingPeriodEnd', t_bp_end]
            WHEN category IS NULL THEN ['unknown_charge_category', 'ChargeCategory', t_category]
            WHEN t_class IS NOT NULL AND lower(t_class) <> 'correction'
                THEN ['unknown_charge_class', 'ChargeClass', t_class]
            WHEN t_quantity IS NOT NULL AND quantity IS NULL
                THEN [_focus_money_problem(t_quantity), 'ConsumedQuantity', t_quantity]
            WHEN t_tags IS NOT NULL AND coalesce(json_type(try(json(t_tags))), '') <> 'OBJECT'
                THEN ['tags_not_json_object', 'Tags', t_tags]
        END AS problem
    FROM v
)
SELECT
    line,
    problem,
    in_scope,
    billed,
    start_ts::DATE AS day,
    -- Out-of-scope lines keep only what their count needs (a big export stays small here).
    CASE WHEN in_scope THEN effective END AS effective,
    CASE WHEN in_scope THEN list_cost END AS list_cost,
    CASE WHEN in_scope THEN quantity END AS quantity,
    CASE WHEN in_scope THEN start_ts END AS start_ts,
    CASE WHEN in_scope THEN end_ts END AS end_ts,
    CASE WHEN in_scope THEN bp_start_ts END AS bp_start_ts,
    CASE WHEN in_scope THEN bp_end_ts END AS bp_end_ts,
    category,
    CASE WHEN in_scope AND lower(t_class) = 'correction' THEN 'Correction' END AS charge_class,
    CASE WHEN in_scope THEN _focus_null(ChargeDescription) END AS description,
    CASE WHEN in_scope THEN _focus_null(ProviderName) END AS provider_name,
    CASE WHEN in_scope THEN _focus_null(BillingAccountId) END AS billing_account,
    CASE WHEN in_scope THEN _focus_null(SubAccountId) END AS sub_account,
    CASE WHEN in_scope THEN _focus_null(ResourceId) END AS resource_id,
    CASE WHEN in_scope THEN service_name END AS service_name,
    CASE WHEN in_scope THEN _focus_null(SkuMeter) END AS meter,
    CASE WHEN in_scope THEN _focus_null(ConsumedUnit) END AS unit,
    CASE WHEN in_scope AND problem IS NULL THEN json(t_tags)::VARCHAR END AS tags,
    CASE WHEN in_scope THEN _focus_null(CommitmentDiscountId) END AS commitment_id,
    CASE WHEN in_scope THEN lower(_focus_null(CommitmentDiscountStatus)) END AS commitment_status,
    CASE WHEN in_scope THEN _focus_null(x_Model) END AS x_model
FROM checked;
