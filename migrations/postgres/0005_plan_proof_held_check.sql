-- Version 5: whether a conversation has parts held for the 24-hour window is read from the
-- held parts' partial index whatever the planner's statistics say.
--
-- Measured (BENCHMARKS.md, "After migration 0005"): on a fresh database `reply_parts` has no
-- statistics until autovacuum first analyzes it (a minute or more), and without them the
-- planner takes `held_at IS NOT NULL` to match nearly every row. The plan PL/pgSQL keeps per
-- connection for migration 4's check was then a sequential scan of every reply part ever sent
-- (222 buffers with 3,000 parts; 170–490 µs a webhook at 300 msg/s, growing with each reply):
-- the one statement of a message whose cost grew with the table. Held parts are few (a reply
-- waits for the window only while the customer is silent), so the partial index is always the
-- right path; the function says so instead of relying on statistics.
CREATE OR REPLACE FUNCTION wagate_has_held(p_pnid TEXT, p_customer TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql STABLE
SET enable_seqscan = off
AS $fn$
BEGIN
    RETURN EXISTS (
        WITH held AS MATERIALIZED (
            SELECT turn_id FROM reply_parts WHERE held_at IS NOT NULL)
        SELECT 1 FROM held h JOIN turns t ON t.id = h.turn_id
        WHERE t.phone_number_id = p_pnid AND t.customer = p_customer);
END
$fn$;
