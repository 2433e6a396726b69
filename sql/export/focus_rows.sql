-- The allocated, reconciled ledger of one billing month as FOCUS 1.2 rows. Sources:
--  * marts.split_billing_daily, one FOCUS row per billing layer of each split row:
--    provider usage on BYOK keys (invoiced by the provider; its share of the provider's
--    correction lines becomes a separate ChargeClass 'Correction' row), the platform's BYOK
--    fee and the platform credits spent on shared capacity (both invoiced by the platform);
--  * marts.non_usage_charges: credits, tax, purchases and adjustments, as the invoices
--    categorised them.
-- So sum(BilledCost) = sum(split_billing_daily.total_usd) + sum(non_usage_charges.billed_usd).
-- Needs TEMP _export_names(provider, name): provider id -> display name.
-- Parameters: $start, $end (days, inclusive), $billing_start, $billing_end (month bounds,
-- end exclusive, TIMESTAMPTZ), $platform (platform name).
WITH split AS (
    SELECT s.*, row_number() OVER () AS row_id
    FROM marts.split_billing_daily s
    WHERE s.day BETWEEN $start AND $end
), cell_corr AS (
    -- Correction lines as split billing allocated them (with the cell's usage lines), and the
    -- billing period they were invoiced in (a later month than the day they correct).
    SELECT day, x_Provider AS provider, x_Account AS account, x_UpstreamModel AS upstream_model,
           sum(BilledCost) AS corr,
           CAST(min(BillingPeriodStart) AS TIMESTAMPTZ) AS corr_billing_start,
           CAST(max(BillingPeriodEnd) AS TIMESTAMPTZ) AS corr_billing_end
    FROM staging.invoice_lines
    WHERE day BETWEEN $start AND $end AND x_Provider <> '_platform' AND ChargeCategory = 'Usage'
      AND ChargeClass = 'Correction'
    GROUP BY ALL
    HAVING sum(BilledCost) <> 0
), prov AS (
    -- The provider's correction lines are allocated with the rest of the cell's billed cost;
    -- give each split row the same share of them (exact to 1e-9: the largest row takes the
    -- rounding remainder) so they can be reported as FOCUS corrections.
    SELECT s.*, c.corr, c.corr_billing_start, c.corr_billing_end,
           sum(s.provider_billed_usd) OVER cell AS cell_billed,
           row_number() OVER (PARTITION BY s.day, s.provider, s.account, s.upstream_model
                              ORDER BY abs(s.provider_billed_usd) DESC, s.row_id) AS rank_in_cell
    FROM split s
    LEFT JOIN cell_corr c
      ON c.day = s.day AND c.provider = s.provider AND c.account IS NOT DISTINCT FROM s.account
     AND c.upstream_model IS NOT DISTINCT FROM s.upstream_model
    WHERE s.credential = 'byok'
    WINDOW cell AS (PARTITION BY s.day, s.provider, s.account, s.upstream_model)
), prov_share AS (
    SELECT *,
           CASE WHEN corr IS NULL OR provider_billed_usd IS NULL THEN CAST(0 AS DECIMAL(38, 9))
                WHEN cell_billed = 0 THEN CASE WHEN rank_in_cell = 1 THEN corr ELSE 0 END
                ELSE CAST(corr * provider_billed_usd / cell_billed AS DECIMAL(38, 9)) END AS raw_share
    FROM prov
), prov_fixed AS (
    SELECT *,
           raw_share + CASE WHEN rank_in_cell = 1 AND corr IS NOT NULL AND provider_billed_usd IS NOT NULL
                            THEN corr - sum(raw_share) OVER (PARTITION BY day, provider, account, upstream_model)
                            ELSE 0 END AS corr_share
    FROM prov_share
), layers AS (
    SELECT row_id, 'provider_usage' AS layer, NULL AS charge_class,
           coalesce(provider_billed_usd, provider_estimated_usd) - corr_share AS cost,
           list_usd AS list_cost, provider_estimated_usd AS estimated,
           $billing_start AS billing_start, $billing_end AS billing_end
    FROM prov_fixed
    WHERE coalesce(provider_billed_usd, provider_estimated_usd) - corr_share <> 0 OR requests > 0
    UNION ALL
    SELECT row_id, 'provider_correction', 'Correction', corr_share, corr_share, NULL,
           coalesce(corr_billing_start, $billing_start), coalesce(corr_billing_end, $billing_end)
    FROM prov_fixed WHERE corr_share <> 0
    UNION ALL
    SELECT row_id, 'platform_fee', NULL, platform_fee_usd, platform_fee_usd,
           platform_fee_estimated_usd, $billing_start, $billing_end
    FROM split WHERE platform_fee_usd <> 0
    UNION ALL
    SELECT row_id, 'platform_credits', NULL, platform_credits_usd,
           CASE WHEN credential = 'shared' THEN greatest(list_usd, 0) ELSE platform_credits_usd END,
           platform_credits_estimated_usd, $billing_start, $billing_end
    FROM split WHERE platform_credits_usd <> 0
), usage_rows AS (
    SELECT
        CAST(l.cost AS DECIMAL(38, 9)) AS BilledCost,
        CASE WHEN l.layer LIKE 'provider%' THEN coalesce(s.account, s.provider)
             ELSE $platform END AS BillingAccountId,
        CASE WHEN l.layer LIKE 'provider%' THEN coalesce(pn.name, s.provider) || ' ' || coalesce(s.account, '')
             ELSE $platform END AS BillingAccountName,
        'USD' AS BillingCurrency,
        l.billing_end AS BillingPeriodEnd,
        l.billing_start AS BillingPeriodStart,
        'Usage' AS ChargeCategory,
        l.charge_class AS ChargeClass,
        CASE l.layer
            WHEN 'provider_usage' THEN s.model || ' on ' || coalesce(pn.name, s.provider)
                || ' (BYOK key ' || coalesce(s.key_id, '?') || '), requests: ' || s.requests
            WHEN 'provider_correction' THEN 'Correction by ' || coalesce(pn.name, s.provider)
                || ' to earlier ' || coalesce(s.upstream_model, s.model, 'usage') || ' charges'
            WHEN 'platform_fee' THEN $platform || ' BYOK fee on ' || coalesce(s.model, '?')
                || ', requests: ' || s.requests
            ELSE coalesce(s.model, '?') || ' on ' || $platform || ' shared capacity, requests: '
                || s.requests
        END AS ChargeDescription,
        CAST(s.day + INTERVAL 1 DAY AS TIMESTAMPTZ) AS ChargePeriodEnd,
        CAST(s.day AS TIMESTAMPTZ) AS ChargePeriodStart,
        CAST(l.cost AS DECIMAL(38, 9)) AS ContractedCost,
        CAST(l.cost AS DECIMAL(38, 9)) AS EffectiveCost,
        CASE WHEN l.layer LIKE 'provider%' THEN coalesce(pn.name, s.provider) ELSE $platform END
            AS InvoiceIssuerName,
        CAST(coalesce(l.list_cost, l.cost) AS DECIMAL(38, 9)) AS ListCost,
        CASE WHEN l.charge_class IS NULL THEN CAST(s.requests AS DECIMAL(38, 9)) END AS PricingQuantity,
        CASE WHEN l.charge_class IS NULL THEN 'Requests' END AS PricingUnit,
        CASE WHEN l.layer LIKE 'provider%' THEN coalesce(pn.name, s.provider) ELSE $platform END
            AS ProviderName,
        CASE WHEN l.layer = 'platform_fee' THEN $platform
             ELSE coalesce(mp.name, split_part(s.model, '/', 1), pn.name, s.provider) END
            AS PublisherName,
        'AI and Machine Learning' AS ServiceCategory,
        CASE WHEN l.layer = 'platform_fee' THEN 'AI Platforms' ELSE 'Generative AI' END
            AS ServiceSubcategory,
        CASE WHEN l.layer = 'platform_fee' THEN $platform || ' BYOK routing'
             WHEN l.layer = 'platform_credits' THEN $platform || ' shared capacity'
             ELSE coalesce(pn.name, s.provider) || ' API' END AS ServiceName,
        'Usage-Based' AS ChargeFrequency,
        CASE WHEN l.charge_class IS NULL THEN CAST(s.requests AS DECIMAL(38, 9)) END AS ConsumedQuantity,
        CASE WHEN l.charge_class IS NULL THEN 'Requests' END AS ConsumedUnit,
        CASE WHEN l.layer LIKE 'provider%' THEN s.key_id END AS SubAccountId,
        CASE WHEN l.layer LIKE 'provider%' THEN s.key_id END AS SubAccountName,
        CASE WHEN l.layer = 'platform_fee' THEN 'byok-fee:' || coalesce(s.model, '?')
             WHEN l.layer = 'platform_credits' THEN 'shared:' || coalesce(s.model, '?')
             ELSE s.provider || ':' || coalesce(s.upstream_model, s.model, '?') END AS SkuId,
        CAST(to_json(map_from_entries(list_filter([
            struct_pack(k := 'api_key', v := s.api_key_id),
            struct_pack(k := 'environment', v := s.environment),
            struct_pack(k := 'app', v := s.app),
            struct_pack(k := 'workload', v := s.workload),
            struct_pack(k := 'member', v := s.member_id)
        ], lambda x: x.v IS NOT NULL))) AS VARCHAR) AS Tags,
        s.day AS x_Day,
        l.layer AS x_BillingLayer,
        s.status AS x_LedgerStatus,
        s.attribution AS x_Attribution,
        s.credential AS x_Credential,
        s.key_id AS x_ByokKeyId,
        s.provider AS x_Provider,
        s.account AS x_Account,
        s.model AS x_Model,
        s.upstream_model AS x_UpstreamModel,
        s.api_key_id AS x_ApiKeyId,
        s.environment AS x_Environment,
        s.app AS x_App,
        s.workload AS x_Workload,
        s.member_id AS x_MemberId,
        s.requests AS x_Requests,
        CAST(l.estimated AS DECIMAL(38, 9)) AS x_EstimatedCost,
        CAST(NULL AS VARCHAR) AS x_SourceFile,
        CAST(NULL AS BIGINT) AS x_SourceLine,
        CASE WHEN l.charge_class IS NULL THEN 'Standard' END AS PricingCategory,
        CASE WHEN l.layer = 'platform_fee' THEN 'byok-fee:' || coalesce(s.model, '?')
             WHEN l.layer = 'platform_credits' THEN 'shared:' || coalesce(s.model, '?')
             ELSE s.provider || ':' || coalesce(s.upstream_model, s.model, '?') END AS SkuPriceId
    FROM layers l
    JOIN split s USING (row_id)
    LEFT JOIN _export_names pn ON pn.provider = s.provider
    LEFT JOIN _export_names mp ON mp.provider = split_part(s.model, '/', 1)
), other_rows AS (
    SELECT
        n.billed_usd, coalesce(n.account, n.provider), coalesce(pn.name, n.provider) || ' ' || coalesce(n.account, ''),
        coalesce(n.currency, 'USD'), $billing_end, $billing_start,
        n.charge_category, n.charge_class,
        coalesce(n.description, n.charge_category || ' from ' || coalesce(pn.name, n.provider)),
        CAST(n.day + INTERVAL 1 DAY AS TIMESTAMPTZ), CAST(n.day AS TIMESTAMPTZ),
        n.billed_usd, n.billed_usd, coalesce(pn.name, n.provider), n.billed_usd,
        CAST(NULL AS DECIMAL(38, 9)), CAST(NULL AS VARCHAR),
        coalesce(pn.name, n.provider), coalesce(pn.name, n.provider),
        'AI and Machine Learning', 'Generative AI', coalesce(pn.name, n.provider) || ' API',
        'One-Time', CAST(NULL AS DECIMAL(38, 9)), CAST(NULL AS VARCHAR),
        CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR),
        n.day, 'non_usage', 'invoiced', 'account', CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR),
        n.provider, n.account, CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR),
        CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR),
        CAST(NULL AS BIGINT), CAST(NULL AS DECIMAL(38, 9)), n.source_file, n.source_line,
        CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR)
    FROM marts.non_usage_charges n
    LEFT JOIN _export_names pn ON pn.provider = n.provider
    WHERE n.day BETWEEN $start AND $end
)
SELECT * FROM usage_rows
UNION ALL
SELECT * FROM other_rows
ORDER BY x_Day, x_BillingLayer, x_Provider, x_Model, x_ApiKeyId, x_ByokKeyId, ChargeDescription
