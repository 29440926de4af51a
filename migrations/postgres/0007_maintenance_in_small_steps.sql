-- Version 7: autovacuum works on wagate's tables in small steps, never in one burst.
--
-- Measured at 500 msg/s on one replica (BENCHMARKS.md, "Maintenance in small steps"): each
-- time autovacuum came by (a vacuum and an analyze of every table, about 0.2 and 0.5 s of a
-- core), the message path lost that core meanwhile, and on a busy 2-core machine the p99 of
-- that stretch went from 20-35 ms to 80-180 ms. The same work, paused 20 ms after every 200
-- cost units (PostgreSQL's `autovacuum_vacuum_cost_delay`, 2 ms by default since version 12,
-- 20 ms before), takes one to two seconds and costs the message path nothing visible (p99
-- 30-35 ms in that stretch). It still keeps up: at that pace autovacuum reads 10,000 cached
-- pages or dirties 500 a second, where 500 msg/s leaves a few dozen pages of dead rows a second.
--
-- Every table of wagate's, and its TOAST table (long JSON and memory), so the rule has no
-- exceptions to remember; a table added by a later migration gets the same (a test checks).
-- An operator who wants otherwise sets the parameters (`ALTER TABLE ... SET`/`RESET`).
DO $$
DECLARE
    t RECORD;
BEGIN
    FOR t IN SELECT c.relname, c.reltoastrelid <> 0 AS toasted
             FROM pg_class c
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' LOOP
        EXECUTE format('ALTER TABLE %I SET (autovacuum_vacuum_cost_delay = 20)', t.relname);
        IF t.toasted THEN
            EXECUTE format('ALTER TABLE %I SET (toast.autovacuum_vacuum_cost_delay = 20)',
                           t.relname);
        END IF;
    END LOOP;
END
$$;
