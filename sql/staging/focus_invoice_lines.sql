-- The in-scope lines of one checked FOCUS export (TEMP _focus_rows) as staging.invoice_lines
-- rows; pipeline/sources/focus.py inserts them BY NAME into the caller's TEMP table.
-- $provider: the provider id; $file: the file as named in x_SourceFile; $known: model names.
-- A line whose charge period spans several UTC days becomes one line per day, each with its
-- part of the period and of every amount, split exactly at the nanodollar by the largest
-- remainder (ties to the earlier day), the same rule as the other invoice formats.
WITH lines AS (
    SELECT
        day,
        billed AS BilledCost,
        coalesce(effective, billed) AS EffectiveCost,
        list_cost AS ListCost,
        'USD' AS BillingCurrency,
        start_ts AS ChargePeriodStart,
        end_ts AS ChargePeriodEnd,
        bp_start_ts AS BillingPeriodStart,
        bp_end_ts AS BillingPeriodEnd,
        category AS ChargeCategory,
        charge_class AS ChargeClass,
        description AS ChargeDescription,
        provider_name AS ProviderName,
        billing_account AS BillingAccountId,
        sub_account AS SubAccountId,
        resource_id AS ResourceId,
        service_name AS ServiceName,
        meter AS SkuMeter,
        quantity AS ConsumedQuantity,
        unit AS ConsumedUnit,
        tags AS Tags,
        $provider AS x_Provider,
        -- The account is SubAccountId, BillingAccountId only without it (canonical label text).
        CASE
            WHEN sub_account IS NOT NULL THEN 'sub_account_id=' || sub_account
            WHEN billing_account IS NOT NULL THEN 'billing_account_id=' || billing_account
        END AS x_Account,
        sub_account AS x_SubAccountId,
        CASE WHEN sub_account IS NULL THEN billing_account END AS x_BillingAccountId,
        CASE WHEN category = 'Usage' THEN model END AS x_UpstreamModel,
        CASE
            WHEN meter IS NULL THEN NULL
            WHEN lower(meter) = 'input tokens' THEN 'input'
            WHEN lower(meter) = 'output tokens' THEN 'output'
            WHEN lower(meter) = 'cache read input tokens' THEN 'cache_read'
            WHEN lower(meter) = 'cache write input tokens' THEN 'cache_write'
            ELSE 'other'
        END AS x_TokenType,
        $file AS x_SourceFile,
        line AS x_SourceLine,
        NULL::VARCHAR AS x_SourceLocator,
        -- Committed usage (a commitment such as provisioned throughput or PTUs covers it: billed
        -- $0, its amortised cost in EffectiveCost) is reconciled at EffectiveCost; every other line
        -- at BilledCost. Unused commitment is not usage and keeps BilledCost.
        CASE
            WHEN category = 'Usage' AND billed = 0 AND commitment_id IS NOT NULL
                 AND coalesce(commitment_status, 'used') <> 'unused' AND effective > 0
                THEN effective
            ELSE billed
        END AS x_UsageCost
    FROM (
        SELECT
            *,
            CASE
                WHEN rid_model IS NULL
                     OR (NOT list_contains($known::VARCHAR[], rid_model)
                         AND list_contains($known::VARCHAR[], fallback_model))
                    THEN fallback_model
                ELSE rid_model
            END AS model
        FROM (
            SELECT
                *,
                -- Model: what follows foundation-model/ or models/ in ResourceId, else its last
                -- segment; x_Model or Tags.model when that is a known model and this is not.
                CASE
                    WHEN resource_id IS NULL THEN NULL
                    WHEN strpos(resource_id, 'foundation-model/') > 0 THEN nullif(rtrim(
                        regexp_extract(resource_id, '.*foundation-model/(.*)$', 1), '/'), '')
                    WHEN strpos(resource_id, 'models/') > 0 THEN nullif(rtrim(
                        regexp_extract(resource_id, '.*models/(.*)$', 1), '/'), '')
                    ELSE nullif(regexp_extract(rtrim(resource_id, '/'), '([^/]*)$', 1), '')
                END AS rid_model,
                coalesce(x_model, json_extract_string(tags, '$.model')) AS fallback_model
            FROM _focus_rows
            WHERE in_scope
        )
    )
), multi AS (
    SELECT *, row_number() OVER (ORDER BY x_SourceLine) AS rid
    FROM lines
    WHERE ChargePeriodEnd > date_trunc('day', ChargePeriodStart)::TIMESTAMP + INTERVAL 1 DAY
), cut AS (
    SELECT rid, ChargePeriodStart AS s, ChargePeriodEnd AS e,
           unnest(generate_series(date_trunc('day', ChargePeriodStart)::TIMESTAMP,
                                  ChargePeriodEnd - INTERVAL 1 MICROSECOND, INTERVAL 1 DAY)) AS d
    FROM multi
), parts AS (
    SELECT
        rid,
        row_number() OVER (PARTITION BY rid ORDER BY d) AS k,
        count(*) OVER (PARTITION BY rid) AS n_parts,
        greatest(s, d) AS a,
        least(e, d + INTERVAL 1 DAY) AS b,
        (epoch_us(least(e, d + INTERVAL 1 DAY)) - epoch_us(greatest(s, d)))::HUGEINT AS w,
        (epoch_us(e) - epoch_us(s))::HUGEINT AS total
    FROM cut
), amounts AS (
    SELECT rid, col, (v * 1000000000)::HUGEINT AS nanos
    FROM (
        UNPIVOT (
            SELECT rid, BilledCost, EffectiveCost, ListCost, ConsumedQuantity, x_UsageCost
            FROM multi
        )
        ON BilledCost, EffectiveCost, ListCost, ConsumedQuantity, x_UsageCost
        INTO NAME col VALUE v
    )
), shares AS (
    SELECT p.rid, p.k, a.col, sign(a.nanos) AS sgn, abs(a.nanos) AS n,
           abs(a.nanos) * p.w // p.total AS base, abs(a.nanos) * p.w % p.total AS rem
    FROM parts p JOIN amounts a USING (rid)
), ranked AS (
    SELECT *,
           n - sum(base) OVER (PARTITION BY rid, col) AS leftover,
           row_number() OVER (PARTITION BY rid, col ORDER BY rem DESC, k) AS r
    FROM shares
), spread AS (
    SELECT rid, k,
           max(v) FILTER (WHERE col = 'BilledCost') AS BilledCost,
           max(v) FILTER (WHERE col = 'EffectiveCost') AS EffectiveCost,
           max(v) FILTER (WHERE col = 'ListCost') AS ListCost,
           max(v) FILTER (WHERE col = 'ConsumedQuantity') AS ConsumedQuantity,
           max(v) FILTER (WHERE col = 'x_UsageCost') AS x_UsageCost
    FROM (
        SELECT rid, k, col,
               (sgn * (base + CASE WHEN r <= leftover THEN 1 ELSE 0 END))::DECIMAL(38, 0)
                   * 0.000000001::DECIMAL(10, 9) AS v
        FROM ranked
    )
    GROUP BY rid, k
)
SELECT * FROM lines
WHERE NOT coalesce(
    ChargePeriodEnd > date_trunc('day', ChargePeriodStart)::TIMESTAMP + INTERVAL 1 DAY, false
)
UNION ALL BY NAME
SELECT
    m.* EXCLUDE (rid) REPLACE (
        p.a::DATE AS day,
        p.a AS ChargePeriodStart,
        p.b AS ChargePeriodEnd,
        sp.BilledCost::DECIMAL(38, 9) AS BilledCost,
        sp.EffectiveCost::DECIMAL(38, 9) AS EffectiveCost,
        sp.ListCost::DECIMAL(38, 9) AS ListCost,
        sp.ConsumedQuantity::DECIMAL(38, 9) AS ConsumedQuantity,
        sp.x_UsageCost::DECIMAL(38, 9) AS x_UsageCost,
        'line ' || m.x_SourceLine || ' (day ' || p.k || ' of ' || p.n_parts || ')'
            AS x_SourceLocator
    )
FROM multi m
JOIN parts p USING (rid)
JOIN spread sp ON sp.rid = p.rid AND sp.k = p.k;
