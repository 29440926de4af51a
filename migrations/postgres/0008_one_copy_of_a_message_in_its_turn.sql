-- Version 8: a message twice in one webhook is in its turn once.
--
-- Migration 4's `wagate_record_lane` joined the turn's messages to the body's (message id,
-- JSON) pairs to return each message's JSON, so a message that came twice in one body (recorded
-- once: the second copy is a duplicate) came back twice, and the turn asked the model about it
-- twice. The SQLite inbox, and PostgreSQL's other paths, read the turn from the recorded rows.
-- The same function, with that join on the first copy of each message only (the copy
-- recorded); nothing else changed.
CREATE OR REPLACE FUNCTION wagate_record_lane(
    p_pnid TEXT, p_customer TEXT,
    p_ids TEXT[], p_displays TEXT[], p_names TEXT[], p_kinds TEXT[], p_stamps BIGINT[],
    p_states TEXT[], p_notes TEXT[], p_raws TEXT[], p_received BIGINT,
    p_held_for_person TEXT, p_while_opted_out TEXT,
    p_claim BOOLEAN, p_replica TEXT, p_lease_ms FLOAT8, p_limit INTEGER, p_now BIGINT)
RETURNS SETOF wagate_recorded
LANGUAGE plpgsql AS $fn$
DECLARE
    v_hold       TEXT;            -- the note of messages kept without a turn, NULL: answer them
    v_owner      TEXT;
    v_expired    BOOLEAN;
    v_taken_over BOOLEAN := false;
    v_mode       TEXT := 'none';  -- none | direct (into a new turn at insert) | after (claim after)
    v_turn       BIGINT;
    v_ids        TEXT[];
    v_states     TEXT[];
    v_taken      BIGINT;
    v_fence      BIGINT;
    v_held       BOOLEAN;
    r            wagate_recorded;
BEGIN
    -- A person has the conversation, or the customer opted out: kept without a turn.
    SELECT CASE WHEN c.opted_out THEN p_while_opted_out ELSE p_held_for_person END INTO v_hold
    FROM conversations c
    WHERE c.phone_number_id = p_pnid AND c.customer = p_customer
      AND (c.opted_out OR c.state = 'human');
    IF p_claim AND v_hold IS NULL THEN
        SELECT l.owner, l.expired INTO v_owner, v_expired
        FROM wagate_lock_lease(p_pnid, p_customer) l;
        IF FOUND AND (v_owner IS NULL OR v_owner = p_replica OR v_expired) THEN
            v_taken_over := v_owner IS NOT NULL AND v_owner <> p_replica;
            IF v_owner IS NOT NULL AND EXISTS (
                    SELECT 1 FROM turns
                    WHERE phone_number_id = p_pnid AND customer = p_customer
                      AND state = 'running') THEN
                v_mode := 'none';   -- an interrupted turn: the lane's own claim resumes it first
            ELSIF EXISTS (
                    SELECT 1 FROM inbound
                    WHERE phone_number_id = p_pnid AND customer = p_customer
                      AND state = 'pending') THEN
                v_mode := 'after';  -- older messages wait: they go first
            ELSE
                v_mode := 'direct';
                -- The turn's id now (from the sequence of `turns.id`'s identity, which
                -- PostgreSQL names after the table and column); its row once a message is in.
                v_turn := nextval('turns_id_seq');
            END IF;
        END IF;
    END IF;

    WITH m AS (
        SELECT u.*,
               u.state = 'pending' AND v_mode = 'direct'
                   AND count(*) FILTER (WHERE u.state = 'pending') OVER (ORDER BY u.ord)
                       <= p_limit AS into_turn
        FROM unnest(p_ids, p_displays, p_names, p_kinds, p_stamps, p_states, p_notes, p_raws)
             WITH ORDINALITY AS u(id, display, name, kind, ts, state, note, raw, ord)
    ), ins AS (
        INSERT INTO inbound (message_id, phone_number_id, display_phone_number, customer,
            contact_name, kind, meta_timestamp, received_at, state, turn_id, note)
        SELECT m.id, p_pnid, m.display, p_customer, m.name, m.kind, m.ts, p_received,
               CASE WHEN m.into_turn THEN 'taken'
                    WHEN m.state = 'pending' AND v_hold IS NOT NULL THEN 'skipped'
                    ELSE m.state END,
               CASE WHEN m.into_turn THEN v_turn END,
               CASE WHEN m.state = 'pending' AND v_hold IS NOT NULL THEN v_hold ELSE m.note END
        FROM m ORDER BY m.ord
        ON CONFLICT (message_id) DO NOTHING
        RETURNING seq, message_id, state
    ), raw AS (
        -- Of two copies of one message in a body, the first's JSON (the one inserted).
        INSERT INTO inbound_raw (seq, raw)
        SELECT DISTINCT ON (ins.seq) ins.seq, m.raw
        FROM ins JOIN m ON m.id = ins.message_id ORDER BY ins.seq, m.ord
    )
    SELECT array_agg(ins.message_id ORDER BY ins.seq), array_agg(ins.state ORDER BY ins.seq),
           count(*) FILTER (WHERE ins.state = 'taken')
    INTO v_ids, v_states, v_taken
    FROM ins;
    FOR k IN 1 .. COALESCE(array_length(v_ids, 1), 0) LOOP
        r.inserted_id := v_ids[k];
        r.inserted_state := v_states[k];
        RETURN NEXT r;
    END LOOP;

    IF v_mode = 'direct' AND v_taken > 0 THEN
        INSERT INTO turns (id, phone_number_id, customer, state, attempts, started_at)
        OVERRIDING SYSTEM VALUE VALUES (v_turn, p_pnid, p_customer, 'running', 1, p_now);
        v_fence := wagate_take_lease(p_pnid, p_customer, p_replica, p_lease_ms);
        v_held := wagate_has_held(p_pnid, p_customer);
        RETURN QUERY
            SELECT NULL::TEXT, NULL::TEXT, v_turn, 0, v_fence, v_taken_over, v_held,
                   i.seq, i.message_id, i.phone_number_id, i.display_phone_number, i.customer,
                   i.contact_name, i.kind, i.meta_timestamp, a.raw
            FROM inbound i
            -- Of two copies of one message in a body, the first (the one inserted): joined
            -- to both, the message was in its turn twice.
            JOIN (SELECT DISTINCT ON (u.id) u.id, u.raw
                  FROM unnest(p_ids, p_raws) WITH ORDINALITY AS u(id, raw, ord)
                  ORDER BY u.id, u.ord) a ON a.id = i.message_id
            WHERE i.phone_number_id = p_pnid AND i.customer = p_customer
              AND i.turn_id = v_turn AND i.state = 'taken'
            ORDER BY i.seq;
    ELSIF v_mode = 'after' THEN
        RETURN QUERY
            SELECT NULL::TEXT, NULL::TEXT, c.*
            FROM wagate_take_pending(p_pnid, p_customer, p_replica, p_lease_ms, p_limit, p_now,
                                     v_taken_over) c;
    END IF;
END
$fn$;
