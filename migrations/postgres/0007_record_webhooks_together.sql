-- Version 7: the webhooks of several conversations recorded in one statement.
--
-- Measured at 500 msg/s on one replica (BENCHMARKS.md, "Webhooks together"): the webhook's
-- statement (`wagate_record_lane`) was the largest of a message, and a third of what a
-- message cost PostgreSQL went to work around the statements rather than in them (a round
-- trip, a call, a commit and its flush, a backend woken for each). Webhooks that arrive
-- while one is being written now wait for it and are written together (`intake_batch.rs`):
-- one round trip, one statement and one commit (one flush) for all of them, as the SQLite
-- writer commits concurrent webhooks together. The `200` of each still goes out only after
-- that commit.
--
-- Each webhook is recorded by `wagate_record_lane`, unchanged, one after the other: the same
-- statements, planned by key, under the same locks, so a webhook recorded together with
-- others is recorded exactly as it would be alone. The webhooks go in key order (phone number
-- id, customer, then arrival), so two of these statements lock lease rows and wait at unique
-- keys in the same order and never wait for each other in a cycle; webhooks of one
-- conversation keep their arrival order.
--
-- p_ends: where each webhook's messages end in the message arrays (1-based, inclusive), the
-- messages of webhook k being p_ends[k-1]+1 .. p_ends[k].
--
-- Rows: `wagate_record_lane`'s for each webhook, followed by the webhook's index (1-based).
CREATE FUNCTION wagate_record_lanes(
    p_pnids TEXT[], p_customers TEXT[], p_claims BOOLEAN[], p_ends INTEGER[],
    p_ids TEXT[], p_displays TEXT[], p_names TEXT[], p_kinds TEXT[], p_stamps BIGINT[],
    p_states TEXT[], p_notes TEXT[], p_raws TEXT[], p_received BIGINT,
    p_held_for_person TEXT, p_while_opted_out TEXT,
    p_replica TEXT, p_lease_ms FLOAT8, p_limit INTEGER, p_now BIGINT)
RETURNS TABLE (
    inserted_id          TEXT,
    inserted_state       TEXT,
    turn_id              BIGINT,
    attempt              INTEGER,
    fence                BIGINT,
    taken_over           BOOLEAN,
    has_held             BOOLEAN,
    seq                  BIGINT,
    message_id           TEXT,
    phone_number_id      TEXT,
    display_phone_number TEXT,
    customer             TEXT,
    contact_name         TEXT,
    kind                 TEXT,
    meta_timestamp       BIGINT,
    raw                  TEXT,
    webhook              INTEGER)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    w      RECORD;
    v_from INTEGER;
    v_to   INTEGER;
BEGIN
    FOR w IN SELECT k FROM generate_subscripts(p_pnids, 1) AS s(k)
              ORDER BY p_pnids[k], p_customers[k], k LOOP
        v_from := CASE WHEN w.k = 1 THEN 1 ELSE p_ends[w.k - 1] + 1 END;
        v_to := p_ends[w.k];
        RETURN QUERY
            SELECT r.*, w.k::INTEGER
            FROM wagate_record_lane(
                p_pnids[w.k], p_customers[w.k],
                p_ids[v_from:v_to], p_displays[v_from:v_to], p_names[v_from:v_to],
                p_kinds[v_from:v_to], p_stamps[v_from:v_to], p_states[v_from:v_to],
                p_notes[v_from:v_to], p_raws[v_from:v_to], p_received,
                p_held_for_person, p_while_opted_out,
                p_claims[w.k], p_replica, p_lease_ms, p_limit, p_now) r;
    END LOOP;
END
$fn$;
