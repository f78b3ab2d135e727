-- Who may read what through Supabase's APIs (PostgREST, Realtime).
--
-- - service_role (the service key, used by the API and Lambdas) has every privilege and bypasses
--   row-level security (Supabase creates it with BYPASSRLS). The service itself connects as the
--   tables' owner, which row-level security does not restrict either (it is not FORCEd).
-- - authenticated (a front-end holding a user's JWT) reads its tenant's tasks, videos, stage runs and
--   costs, nothing else, and writes nothing. The tenant is the JWT claim app_metadata.tenant_id, which
--   only the server can set (Auth admin API or an auth hook); user_metadata is editable by the user and
--   is never used for authorization.
-- - anon (the public key, no user) gets nothing.
--
-- Supabase's default privileges grant anon and authenticated every privilege on new tables in public,
-- so they are revoked here and only SELECT is granted back; row-level security is enabled on every
-- table (in each table's migration), and a table without a policy for a role returns no rows to it.
-- Tasks have no tenant column: their policy follows videos.task_id -> videos.tenant_id.

REVOKE ALL ON TABLE
    public.tasks, public.transitions, public.stage_runs,
    public.tenants, public.api_keys, public.signing_secrets,
    public.videos,
    public.webhook_endpoints, public.webhook_messages, public.webhook_attempts,
    public.cost_entries
FROM anon, authenticated;

GRANT ALL ON TABLE
    public.tasks, public.transitions, public.stage_runs,
    public.tenants, public.api_keys, public.signing_secrets,
    public.videos,
    public.webhook_endpoints, public.webhook_messages, public.webhook_attempts,
    public.cost_entries
TO service_role;

GRANT SELECT ON TABLE public.tasks, public.videos, public.stage_runs, public.cost_entries TO authenticated;

REVOKE ALL ON FUNCTION public.record_task_transition(TEXT, TEXT, TEXT, TEXT, JSONB, TEXT, TIMESTAMPTZ)
FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.record_task_transition(TEXT, TEXT, TEXT, TEXT, JSONB, TEXT, TIMESTAMPTZ)
TO service_role;

-- (SELECT auth.jwt() ...) is evaluated once per statement, not once per row.

DROP POLICY IF EXISTS videos_select_own_tenant ON public.videos;
CREATE POLICY videos_select_own_tenant ON public.videos
    FOR SELECT TO authenticated
    USING (tenant_id = (SELECT auth.jwt() -> 'app_metadata' ->> 'tenant_id'));

DROP POLICY IF EXISTS tasks_select_own_tenant ON public.tasks;
CREATE POLICY tasks_select_own_tenant ON public.tasks
    FOR SELECT TO authenticated
    USING (
        EXISTS (
            SELECT 1 FROM public.videos v
            WHERE v.task_id = tasks.task_id
              AND v.tenant_id = (SELECT auth.jwt() -> 'app_metadata' ->> 'tenant_id')
        )
    );

DROP POLICY IF EXISTS stage_runs_select_own_tenant ON public.stage_runs;
CREATE POLICY stage_runs_select_own_tenant ON public.stage_runs
    FOR SELECT TO authenticated
    USING (
        EXISTS (
            SELECT 1 FROM public.videos v
            WHERE v.task_id = stage_runs.task_id
              AND v.tenant_id = (SELECT auth.jwt() -> 'app_metadata' ->> 'tenant_id')
        )
    );

DROP POLICY IF EXISTS cost_entries_select_own_tenant ON public.cost_entries;
CREATE POLICY cost_entries_select_own_tenant ON public.cost_entries
    FOR SELECT TO authenticated
    USING (
        EXISTS (
            SELECT 1 FROM public.videos v
            WHERE v.task_id = cost_entries.task_id
              AND v.tenant_id = (SELECT auth.jwt() -> 'app_metadata' ->> 'tenant_id')
        )
    );
