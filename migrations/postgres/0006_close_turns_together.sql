-- Version 6: the closes of several answered turns in one statement.
--
-- Measured at 500 msg/s on one replica (BENCHMARKS.md, "Closes together"): a turn's close (its
-- last part's `sent` mark and `wagate_finish`) was a quarter of PostgreSQL's time: a round
-- trip, a function call, six statements and a commit for a few rows. Closes are off the
-- reply's path (the customer has the answer when the turn closes),
-- so a replica gathers the closes that are ready together (`close_batch.rs`) and writes them
-- here: one round trip, one function call and one commit for all of them, and one statement
-- per turn inside (its part's mark, its lease under the same fence as `wagate_finish`'s, the
-- turn, its messages) where `wagate_finish` ran six.
--
-- Turn by turn, not one statement per table over all the turns: each statement finds its rows
-- by equality on a key, a plan that stays right whatever the tables' statistics said when a
-- connection first planned it. A join over the arrays was planned, on a fresh database, as a
-- walk of a whole index (and PL/pgSQL keeps a connection's plans as long as it lives).
--
-- Only the common close: a turn answered (`done`). A failed turn and a turn kept for a retry
-- still go through `wagate_finish`, and so does a turn whose conversation has messages
-- waiting when the caller would claim them next (`p_claim_next`): this function leaves it
-- untouched (status `next`) for `wagate_finish` to close and claim in one statement.
--
-- Locks: the leases still held are locked in key order (phone number id, customer), as every
-- statement that locks several lease rows does (the heartbeat's in `lease.rs`), so two of
-- them never wait for each other in a cycle.
--
-- Rows: one per turn closed (`closed`, its id and the fence given up) or left (`next`); a turn
-- missing from the answer lost its lease to another replica and was not touched (its `sent`
-- mark is written anyway: Meta has the part, whoever owns the conversation now).
CREATE FUNCTION wagate_finish_answered(
    p_replica TEXT, p_turns BIGINT[], p_pnids TEXT[], p_customers TEXT[], p_fences BIGINT[],
    p_claim_next BOOLEAN[], p_now BIGINT,
    p_sent_idx INTEGER[], p_sent_ids TEXT[], p_sent_at BIGINT[])
RETURNS TABLE (closed_turn BIGINT, closed_fence BIGINT, status TEXT)
LANGUAGE plpgsql AS $fn$
DECLARE
    c        RECORD;
    v_waits  BOOLEAN;
    v_closed BOOLEAN;
BEGIN
    -- In key order: the lease rows are locked one after the other as the loop goes.
    FOR c IN SELECT * FROM unnest(p_turns, p_pnids, p_customers, p_fences, p_claim_next,
                                  p_sent_idx, p_sent_ids, p_sent_at)
                           AS t(turn, pnid, customer, fence, claim_next, sent_idx, sent_id,
                                sent_at)
              ORDER BY t.pnid, t.customer LOOP
        WITH sent AS (
            -- Not fenced: Meta has the part, whoever owns the conversation now.
            UPDATE reply_parts
               SET outbound_id = c.sent_id, sent_at = c.sent_at, sending_at = NULL,
                   held_at = NULL
             WHERE turn_id = c.turn AND idx = c.sent_idx AND outbound_id IS NULL
        ), waits AS (
            SELECT c.claim_next AND EXISTS (
                       SELECT 1 FROM inbound
                        WHERE phone_number_id = c.pnid AND customer = c.customer
                          AND state = 'pending') AS yes
        ), lease AS (
            UPDATE leases SET owner = NULL, expires_at = now()
             WHERE phone_number_id = c.pnid AND customer = c.customer
               AND owner = p_replica AND fence = c.fence
               AND NOT (SELECT yes FROM waits)
            RETURNING 1
        ), turn AS (
            UPDATE turns SET state = 'done', finished_at = p_now, error = NULL
             WHERE id = c.turn AND EXISTS (SELECT 1 FROM lease)
        ), messages AS (
            UPDATE inbound SET state = 'done', note = NULL
             WHERE phone_number_id = c.pnid AND customer = c.customer
               AND turn_id = c.turn AND state = 'taken' AND EXISTS (SELECT 1 FROM lease)
        )
        SELECT (SELECT yes FROM waits), EXISTS (SELECT 1 FROM lease) INTO v_waits, v_closed;
        closed_turn := c.turn;
        IF v_closed THEN
            closed_fence := c.fence;
            status := 'closed';
            RETURN NEXT;
        ELSIF v_waits THEN
            -- Left for `wagate_finish` (which also finds out whether the lease is still held).
            closed_fence := NULL;
            status := 'next';
            RETURN NEXT;
        END IF;
        -- Neither: taken over, not in the answer.
    END LOOP;
    -- No flush of its own, as `wagate_finish`'s close (src/inbox/store/postgres/parts.rs,
    -- `Flush`): lost to a PostgreSQL crash, each turn is resumed and finds its parts sent.
    PERFORM set_config('synchronous_commit', 'off', true);
END
$fn$;
