-- The likely cause of every unmatched cell of the run's days, with a one-sentence explanation
-- and its evidence, from the cells of the analysis window (TEMP _rc_cells, CAUSE_WINDOW_DAYS either
-- side: a drift or a discount is only visible as a pattern across days) and the log gaps of
-- the run's days (TEMP _rc_gaps, _rc_gap_cells). Rules, first that applies wins:
--   correction            the day's correction lines explain the variance (within tolerance)
--   account_mismatch      logged cost billed $0 while the same provider bills, that day, an
--                         account no BYOK key claims (both cells; the identifiers are suggested)
--   logs_missing          a normally active log writer has empty hours that day and their
--                         estimated cost covers at least half of the variance
--   price_mismatch        billed/expected off the same way on >= 2 days of the model on that
--                         account, or on >= 2 models of the account, or >= 2 accounts of the
--                         model that day (steady factor: discount/price; changing: drift)
--   logs_missing          (weaker) any log gap behind the cell, or an unlogged cell whose
--                         account and model have logs on other days, on a day with a gap
--   usage_outside_router  billed, no logged request for that account and model that day
--   unknown               none of the above
-- missing_invoice / invoice_unreadable cells carry their status as cause (no variance yet).
CREATE OR REPLACE TEMP MACRO _rc_usd(x) AS
    CASE WHEN round(x, 2) < 0 THEN '-$' ELSE '$' END || format('{:,.2f}', abs(CAST(x AS DECIMAL(38, 9))));
CREATE OR REPLACE TEMP MACRO _rc_acct(a) AS
    coalesce(replace(replace(replace(replace(replace(replace(a, ';', ', '),
        'project_id=', 'project '), 'api_key_id=', 'API key '), 'workspace_id=', 'workspace '),
        'sub_account_id=', 'sub-account '), 'billing_account_id=', 'billing account '), 'no account');
CREATE OR REPLACE TEMP MACRO _rc_pct(r) AS format('{:.1f}', abs(r - 1) * 100) || ' %';

-- Direction of a cell's billed/expected factor: +1 above, -1 below, 0 within 0.5 % of 1 (a
-- small cell can be matched by the dollar tolerance and still show a drift's direction).
CREATE OR REPLACE TEMP TABLE _rc_dir AS
SELECT *, CASE WHEN ratio IS NULL THEN NULL WHEN ratio > 1.005 THEN 1 WHEN ratio < 0.995 THEN -1
               ELSE 0 END AS dir
FROM _rc_cells;

CREATE OR REPLACE TEMP TABLE _rc_out AS
WITH target AS (
    SELECT * FROM _rc_dir WHERE day BETWEEN $start AND $end
), pattern AS (
    -- The model on this account across the window: the run of days whose factor is off in the
    -- same direction around the cell, bounded by the nearest day that is not.
    SELECT t.day, t.provider, t.account, t.upstream_model,
           max(s.day) FILTER (WHERE s.dir IS DISTINCT FROM t.dir AND s.dir IS NOT NULL AND s.day < t.day) AS matched_before,
           min(s.day) FILTER (WHERE s.dir IS DISTINCT FROM t.dir AND s.dir IS NOT NULL AND s.day > t.day) AS matched_after
    FROM target t
    JOIN _rc_dir s
      ON s.provider = t.provider AND s.account IS NOT DISTINCT FROM t.account
     AND s.upstream_model IS NOT DISTINCT FROM t.upstream_model
     AND s.day BETWEEN t.day - CAST($window AS INTEGER) AND t.day + CAST($window AS INTEGER)
    WHERE t.ratio IS NOT NULL AND t.status IN ('over_billed', 'under_billed')
    GROUP BY ALL
), streak AS (
    SELECT p.day, p.provider, p.account, p.upstream_model,
           count(*) AS n_days, min(s.day) AS first_day, max(s.day) AS last_day,
           min(s.ratio) AS min_ratio, max(s.ratio) AS max_ratio,
           arg_min(s.ratio, s.day) AS first_ratio
    FROM pattern p
    JOIN target t USING (day, provider, account, upstream_model)
    JOIN _rc_dir s
      ON s.provider = p.provider AND s.account IS NOT DISTINCT FROM p.account
     AND s.upstream_model IS NOT DISTINCT FROM p.upstream_model AND s.dir = t.dir
     AND s.day BETWEEN p.day - CAST($window AS INTEGER) AND p.day + CAST($window AS INTEGER)
     AND s.day > coalesce(p.matched_before, DATE '0001-01-01')
     AND s.day < coalesce(p.matched_after, DATE '9999-12-31')
    GROUP BY ALL
), breadth AS (
    SELECT t.day, t.provider, t.account, t.upstream_model,
           count(DISTINCT s.upstream_model) FILTER (
               WHERE s.account IS NOT DISTINCT FROM t.account AND abs(s.ratio - t.ratio) <= 0.02) AS n_models,
           count(DISTINCT s.account) FILTER (
               WHERE s.upstream_model IS NOT DISTINCT FROM t.upstream_model AND abs(s.ratio - t.ratio) <= 0.03) AS n_accounts
    FROM target t
    JOIN _rc_dir s
      ON s.day = t.day AND s.provider = t.provider AND s.dir = t.dir
    WHERE t.ratio IS NOT NULL AND t.status IN ('over_billed', 'under_billed')
    GROUP BY ALL
), zero_logged AS (  -- logged cost the provider's arrived exports bill nothing for (an
                     -- account-level export that does not list the account counts too)
    SELECT c.* FROM _rc_cells c
    WHERE c.expected_usd > 0 AND c.invoice_lines = 0
      AND (c.status = 'under_billed'
           OR (c.status = 'missing_invoice' AND EXISTS (
                   SELECT 1 FROM _rc_coverage v
                   WHERE v.day = c.day AND v.provider = c.provider AND v.status = 'arrived')))
), unclaimed AS (    -- billed accounts no BYOK key claims, with no logged request
    SELECT * FROM _rc_cells WHERE invoice_lines > 0 AND requests = 0 AND NOT account_claimed
), mismatch_zero AS (
    SELECT z.day, z.provider, z.account, z.upstream_model,
           -- Same model first, then the largest bill, then by name: deterministic on ties.
           (list(u.account ORDER BY u.upstream_model IS NOT DISTINCT FROM z.upstream_model DESC,
                 u.billed_usd DESC, u.account))[1] AS other_account,
           sum(u.billed_usd) AS other_billed, count(DISTINCT u.account) AS other_accounts
    FROM zero_logged z JOIN unclaimed u ON u.day = z.day AND u.provider = z.provider
    WHERE z.day BETWEEN $start AND $end
    GROUP BY ALL
), mismatch_unclaimed AS (
    SELECT u.day, u.provider, u.account, u.upstream_model,
           string_agg(DISTINCT z.key_ids, ',' ORDER BY z.key_ids) AS keys, sum(z.expected_usd) AS keys_usd
    FROM unclaimed u JOIN zero_logged z ON z.day = u.day AND z.provider = u.provider
    WHERE u.day BETWEEN $start AND $end
    GROUP BY ALL
), logged_elsewhere AS (  -- account x model with logs on another day of the window
    SELECT t.day, t.provider, t.account, t.upstream_model, min(s.day) AS first_logged,
           max(s.day) AS last_logged
    FROM target t
    JOIN _rc_cells s
      ON s.provider = t.provider AND s.account IS NOT DISTINCT FROM t.account
     AND s.upstream_model IS NOT DISTINCT FROM t.upstream_model AND s.requests > 0
     AND s.day BETWEEN t.day - CAST($window AS INTEGER) AND t.day + CAST($window AS INTEGER)
    WHERE t.requests = 0
    GROUP BY ALL
), day_gaps AS (
    SELECT day, string_agg(writer || ' ' || strftime(gap_start, '%H:%M') || '–'
                           || strftime(gap_end - INTERVAL 1 SECOND, '%H') || ':59 UTC (' || hours || ' h)',
                           '; ' ORDER BY writer, gap_start) AS log_gap
    FROM _rc_gaps GROUP BY day
), facts AS (
    SELECT t.*, st.n_days, st.first_day, st.min_ratio, st.max_ratio, st.first_ratio,
           coalesce(b.n_models, 0) AS n_models, coalesce(b.n_accounts, 0) AS n_accounts,
           mz.other_account, mz.other_billed, mz.other_accounts, mu.keys AS mismatch_keys,
           mu.keys_usd AS mismatch_keys_usd, gc.estimated_gap_usd,
           coalesce(gc.log_gap, CASE WHEN t.requests = 0 AND le.day IS NOT NULL THEN dg.log_gap END) AS log_gap,
           le.first_logged, le.last_logged,
           abs(t.variance_usd - t.corrections_usd) <= t.tolerance_usd AND t.corrections_usd <> 0 AS by_correction
    FROM target t
    LEFT JOIN streak st USING (day, provider, account, upstream_model)
    LEFT JOIN breadth b USING (day, provider, account, upstream_model)
    LEFT JOIN mismatch_zero mz USING (day, provider, account, upstream_model)
    LEFT JOIN mismatch_unclaimed mu USING (day, provider, account, upstream_model)
    LEFT JOIN _rc_gap_cells gc USING (day, provider, account, upstream_model)
    LEFT JOIN logged_elsewhere le USING (day, provider, account, upstream_model)
    LEFT JOIN day_gaps dg ON dg.day = t.day
), caused AS (
    SELECT *,
           -- The provider's name for people (its statement name in ledger.yaml), else its id.
           coalesce((SELECT min(p.statement_name) FROM ref_providers p WHERE p.provider = facts.provider), provider)
               AS pname,
           CASE WHEN status = 'matched' THEN NULL
                WHEN other_account IS NOT NULL OR mismatch_keys IS NOT NULL THEN 'account_mismatch'
                WHEN status IN ('missing_invoice', 'invoice_unreadable') THEN status
                WHEN by_correction THEN 'correction'
                -- An established pattern (3+ days) wins over a gap that day (a drift continues).
                WHEN n_days >= 3 THEN 'price_mismatch'
                WHEN status IN ('over_billed', 'unlogged_usage') AND estimated_gap_usd > 0
                     AND estimated_gap_usd * 2 >= variance_usd THEN 'logs_missing'
                -- A same-day pattern across models or accounts is what lost logs look like too:
                -- it counts only when no log gap lies behind the cell.
                WHEN n_days >= 2 OR (log_gap IS NULL AND (n_models >= 2 OR n_accounts >= 2))
                    THEN 'price_mismatch'
                WHEN status IN ('over_billed', 'unlogged_usage') AND log_gap IS NOT NULL THEN 'logs_missing'
                WHEN status = 'unlogged_usage' THEN 'usage_outside_router'
                ELSE 'unknown' END AS likely_cause
    FROM facts
)
SELECT day, provider, account, upstream_model, expected_usd, billed_usd, variance_usd,
       variance_pct, status, requests, invoice_lines, key_ids, corrections_usd, likely_cause,
       CASE likely_cause
       WHEN 'missing_invoice' THEN
           'No ' || pname || ' export covering ' || _rc_acct(account) || ' on ' || day
           || ' has arrived yet: the logs'' ' || _rc_usd(expected_usd)
           || ' stays an estimate until it does; re-run after the next export.'
       WHEN 'invoice_unreadable' THEN
           'The ' || pname || ' export for ' || day || ' (' || coalesce(unreadable_files, '?')
           || ') was refused as unreadable, so the logs'' ' || _rc_usd(expected_usd)
           || ' cannot be checked: fix or re-download that file and re-run.'
       WHEN 'correction' THEN
           CASE WHEN requests = 0 THEN
               'A correction of ' || _rc_usd(corrections_usd) || ' (' || coalesce(correction_files, '?')
               || ') was booked to ' || day || ', a day with no logged usage for ' || upstream_model
               || ' on ' || _rc_acct(account) || ': it restates that day''s bill, the logs are not at fault.'
           ELSE
               'A correction of ' || _rc_usd(corrections_usd) || ' (' || coalesce(correction_files, '?')
               || ') was booked to ' || day || ': without it ' || pname || ' billed '
               || _rc_usd(billed_usd - corrections_usd) || ' against ' || _rc_usd(expected_usd)
               || ' logged, within tolerance; nothing to do unless the correction is disputed.'
           END
       WHEN 'account_mismatch' THEN
           CASE WHEN other_account IS NOT NULL THEN
               pname || ' billed nothing to ' || _rc_acct(account) || ' for ' || coalesce(upstream_model, '?')
               || ' on ' || day || ' although key ' || coalesce(key_ids, '?') || ' logged ' || _rc_usd(expected_usd)
               || ', while it billed ' || _rc_usd(other_billed) || ' to ' || _rc_acct(other_account)
               || ', which no BYOK key''s account matches: put ' || replace(other_account, ';', ', ')
               || ' in byok_keys[].account of ' || coalesce(key_ids, 'that key') || '.'
           ELSE
               pname || ' billed ' || _rc_usd(billed_usd) || ' to ' || _rc_acct(account)
               || ', which no BYOK key''s account matches, on a day when key ' || mismatch_keys
               || ' logged ' || _rc_usd(mismatch_keys_usd) || ' that no invoice line bills: put '
               || replace(account, ';', ', ') || ' in byok_keys[].account of ' || mismatch_keys || '.'
           END
       WHEN 'logs_missing' THEN
           'Log writer ' || log_gap || ' wrote nothing while ' || pname || ' billed usage'
           || CASE WHEN estimated_gap_usd IS NOT NULL
                   THEN ': about ' || _rc_usd(estimated_gap_usd) || ' of requests for ' || upstream_model
                        || ' on ' || _rc_acct(account) || ' (from that writer''s hourly volume) is missing from the logs, against a variance of '
                        || _rc_usd(variance_usd)
                   ELSE ' for ' || upstream_model || ' on ' || _rc_acct(account)
                        || ', which the router logged on other days (' || first_logged || ' to ' || last_logged || ')' END
           || '; recover the lost log lines, or accept the invoice for these hours.'
       WHEN 'price_mismatch' THEN
           CASE WHEN n_days >= 2 AND max_ratio - min_ratio <= 0.02 THEN
               pname || ' bills ' || _rc_pct(ratio) || CASE WHEN ratio < 1 THEN ' less' ELSE ' more' END
               || ' than ledger.yaml''s price for ' || upstream_model || ' on ' || _rc_acct(account)
               || ' on every day since ' || first_day
               || CASE WHEN ratio < 1 THEN ' — a negotiated discount? Set the key''s provider_discount_pct.'
                       ELSE ' — a price ledger.yaml does not have? Update the model''s price.' END
           WHEN n_days >= 2 THEN
               pname || '''s price for ' || upstream_model || ' on ' || _rc_acct(account)
               || ' drifts from ledger.yaml''s since ' || first_day || ': billed/expected '
               || CASE WHEN day = first_day
                       THEN 'is ' || format('{:.3f}', ratio) || ' on that first day and changes on the days after'
                       ELSE CASE WHEN ratio > first_ratio THEN 'rose' ELSE 'fell' END || ' from '
                            || format('{:.3f}', first_ratio) || ' on ' || first_day || ' to '
                            || format('{:.3f}', ratio) || ' on ' || day END
               || ' — a price change ledger.yaml does not know; update the model''s price.'
           WHEN n_models >= 2 THEN
               pname || ' bills ' || _rc_pct(ratio) || CASE WHEN ratio < 1 THEN ' less' ELSE ' more' END
               || ' than ledger.yaml''s prices on ' || _rc_acct(account) || ' for ' || n_models
               || ' models on ' || day
               || CASE WHEN ratio < 1 THEN ' — a negotiated discount? Set the key''s provider_discount_pct.'
                       ELSE ' — a surcharge or prices ledger.yaml does not have? Check the contract.' END
           ELSE
               pname || ' bills ' || _rc_pct(ratio) || CASE WHEN ratio < 1 THEN ' less' ELSE ' more' END
               || ' than ledger.yaml''s price for ' || upstream_model || ' on ' || n_accounts
               || ' accounts on ' || day || ' — a price change for that model; update its price.'
           END
       WHEN 'usage_outside_router' THEN
           pname || ' billed ' || _rc_usd(billed_usd) || ' for ' || coalesce(upstream_model, '?') || ' on '
           || _rc_acct(account) || ' on ' || day
           || CASE WHEN account_claimed
                   THEN ', a BYOK key''s account, but the router logged no request for that model there that day'
                   ELSE ', an account no BYOK key claims (and no key of ' || pname || ' lacks its invoice that day)' END
           || ': the key is used outside the router (a script or notebook?); route that traffic or rotate the key.'
       WHEN 'unknown' THEN
           CASE WHEN expected_usd > 0 AND billed_usd = 0 THEN
               'The arrived ' || pname || ' export bills nothing for ' || coalesce(upstream_model, '?') || ' on '
               || _rc_acct(account) || ' on ' || day || ' although the logs expect ' || _rc_usd(expected_usd)
               || ' and no unclaimed account is billed instead: check the key''s account identifiers against the export, or ask '
               || pname || ' why the usage is missing.'
           ELSE
               pname || ' billed ' || _rc_usd(billed_usd) || ' against ' || _rc_usd(expected_usd) || ' logged ('
               || CASE WHEN variance_usd < 0 THEN '-' ELSE '+' END || format('{:.1f}', abs(coalesce(variance_pct, 0)))
               || ' %) for ' || coalesce(upstream_model, '?') || ' on ' || _rc_acct(account)
               || '; no pattern across days, models or accounts, no log gap and no correction explains it: compare the '
               || invoice_lines || ' invoice line(s) with the logs of that day.'
           END
       END AS explanation,
       tolerance_usd,
       CASE WHEN (likely_cause = 'price_mismatch' OR likely_cause = 'unknown') AND ratio < 1e11
            THEN CAST(round(ratio, 6) AS DECIMAL(18, 6)) END AS implied_factor,
       CASE WHEN likely_cause = 'price_mismatch' THEN coalesce(first_day, day) END AS cause_first_day,
       CASE WHEN likely_cause = 'account_mismatch' THEN coalesce(other_account, account) END AS suggested_account,
       CASE WHEN likely_cause = 'logs_missing' THEN log_gap END AS log_gap,
       CASE WHEN likely_cause = 'logs_missing' THEN estimated_gap_usd END AS estimated_gap_usd
FROM caused;
