-- Requests that broke policy, checked against the config (TEMP ref_* tables). Expected empty.
DELETE FROM marts.policy_violations WHERE day BETWEEN $start AND $end;
INSERT INTO marts.policy_violations
WITH r AS (
    SELECT r.*, a.environment AS key_environment, w.byok AS wl_byok, w.zdr AS wl_zdr,
           coalesce(ga.enforce_zdr, false) OR coalesce(gm.enforce_zdr, false)
             OR coalesce(gd.enforce_zdr, false) OR w.zdr = 'required' AS zdr_required,
           k.key_id AS k_id, k.provider AS k_provider, k.filter_models, k.filter_api_keys,
           k.filter_members, k.filter_environments, k.disabled AS k_disabled,
           coalesce(r.zdr, k.zdr, e.zdr) AS served_zdr
    FROM staging.requests r
    LEFT JOIN ref_api_keys a ON a.api_key_id = r.api_key_id
    LEFT JOIN ref_guardrails ga ON ga.guardrail = a.guardrail
    LEFT JOIN ref_members m ON m.member_id = r.member_id
    LEFT JOIN ref_guardrails gm ON gm.guardrail = m.guardrail
    LEFT JOIN ref_guardrails gd ON gd.guardrail = 'default'
    LEFT JOIN ref_workloads w ON w.workload = r.workload
    LEFT JOIN ref_byok_keys k ON k.key_id = r.key_id
    LEFT JOIN ref_endpoints e ON e.model = r.model AND e.provider = r.provider
    WHERE r.day BETWEEN $start AND $end AND r.log_source = 'router'
), v AS (
    SELECT r.*, 'zdr_required_non_zdr' AS violation,
           'ZDR was required (workload ' || coalesce(workload, '-') || ', API key '
           || coalesce(api_key_id, '-') || ') but ' || coalesce(model, '?') || ' was served by '
           || coalesce(provider, '?') || ' on a non-ZDR endpoint' AS explanation
    FROM r WHERE zdr_required AND status = 'ok' AND served_zdr IS NOT TRUE
    UNION ALL
    SELECT r.*, 'strict_byok_used_shared',
           'workload ' || workload || ' is strict BYOK but '
           || CASE WHEN credential = 'shared' THEN 'the request was served by shared capacity on '
                   || coalesce(provider, '?')
                   ELSE 'an attempt went to shared capacity' END
    FROM r
    WHERE wl_byok = 'strict'
      AND (credential = 'shared' OR list_contains(list_transform(attempts, lambda x: x.credential), 'shared'))
    UNION ALL
    SELECT r.*, 'unknown_key', 'BYOK key ' || key_id || ' is not in the config'
    FROM r WHERE credential = 'byok' AND key_id IS NOT NULL AND k_id IS NULL
    UNION ALL
    SELECT r.*, 'key_outside_filters',
           'BYOK key ' || key_id || ' used outside its filters: '
           || concat_ws('; ',
                CASE WHEN k_provider <> provider THEN 'key is for provider ' || k_provider END,
                CASE WHEN filter_models IS NOT NULL AND NOT list_contains(filter_models, model)
                     THEN 'model ' || coalesce(model, '?') || ' not in ' || array_to_string(filter_models, ',') END,
                CASE WHEN filter_api_keys IS NOT NULL AND NOT list_contains(filter_api_keys, coalesce(api_key_id, ''))
                     THEN 'API key ' || coalesce(api_key_id, '?') || ' not in ' || array_to_string(filter_api_keys, ',') END,
                CASE WHEN filter_members IS NOT NULL AND NOT list_contains(filter_members, coalesce(member_id, ''))
                     THEN 'member ' || coalesce(member_id, '?') || ' not in ' || array_to_string(filter_members, ',') END,
                CASE WHEN k_disabled THEN 'the key is disabled' END)
    FROM r
    WHERE credential = 'byok' AND k_id IS NOT NULL
      AND (k_provider <> provider
           OR (filter_models IS NOT NULL AND NOT list_contains(filter_models, model))
           OR (filter_api_keys IS NOT NULL AND NOT list_contains(filter_api_keys, coalesce(api_key_id, '')))
           OR (filter_members IS NOT NULL AND NOT list_contains(filter_members, coalesce(member_id, '')))
           OR k_disabled)
    UNION ALL
    SELECT r.*, 'environment_crossing',
           CASE WHEN key_environment IS NOT NULL AND environment IS DISTINCT FROM key_environment
                THEN 'API key ' || api_key_id || ' belongs to ' || key_environment
                     || ' but the request ran as ' || coalesce(environment, '-')
                ELSE 'BYOK key ' || key_id || ' is for environments '
                     || array_to_string(filter_environments, ',') || ' but served ' || coalesce(environment, '-') END
    FROM r
    WHERE (key_environment IS NOT NULL AND environment IS DISTINCT FROM key_environment)
       OR (credential = 'byok' AND filter_environments IS NOT NULL
           AND NOT list_contains(filter_environments, coalesce(environment, '')))
)
SELECT day, request_id, ts, violation, explanation, api_key_id, environment, workload, member_id,
       model, provider, credential, key_id, source_file
FROM v;
