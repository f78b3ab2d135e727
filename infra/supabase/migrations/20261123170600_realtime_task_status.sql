-- Task status changes reach Supabase Realtime (postgres_changes on public.tasks). Realtime checks each
-- change against the subscriber's row-level security, so a front-end sees its own tenant's tasks only.
-- Supabase creates the publication supabase_realtime; it is created here when missing (a plain
-- PostgreSQL), and the table is added only once (ADD TABLE fails for a table already published).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = 'supabase_realtime') THEN
        CREATE PUBLICATION supabase_realtime;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_publication_tables
        WHERE pubname = 'supabase_realtime' AND schemaname = 'public' AND tablename = 'tasks'
    ) THEN
        ALTER PUBLICATION supabase_realtime ADD TABLE public.tasks;
    END IF;
END
$$;
