-- Version 4: every statement of a claim and a close reads one conversation's rows; a
-- webhook's messages of one conversation are recorded and claimed in one statement; the
-- shared rate limit keeps its count instead of summing the window on every call.
--
-- Measured at 500 msg/s (BENCHMARKS.md, "Several replicas on PostgreSQL"): the claim's update
-- of its messages took 435 µs and 81 buffers a call, the close's 114 µs and 26. Their plans are
-- generic (kept per connection by PL/pgSQL), and for `seq = ANY (...) AND state = 'pending'`
-- or `turn_id = ... AND state = 'taken'` the planner walked the whole index of open messages
-- (`inbound_open_by_lane`, whose predicate those conditions satisfy) and filtered: the cost
-- grew with every conversation's backlog, so a busy moment made each claim slower and the
-- backlog longer. The same statements now also name the conversation, so the only index
-- that fits starts at its rows (a few at most). Nothing else in them changed.
--
-- Fewer index entries per message, too: a message's pending rows are found by the index of
-- open messages (the conversation's pending and taken ones: a few), so the pending-only index
-- goes, one B-tree write less per message; memory is pruned by age in bulk, which a BRIN does
-- as well as a B-tree at a fraction of the cost per row (rows arrive in time order).

-- Whether the conversation has parts held for the 24-hour window: read from the held parts
-- (a partial index, usually empty) to their turns, never from the conversation's turns (one
-- per message it ever sent, thousands for a long one) to their parts. A plan kept from a
-- connection's first calls, when the tables were small, went the second way.
CREATE OR REPLACE FUNCTION wagate_has_held(p_pnid TEXT, p_customer TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    RETURN EXISTS (
        WITH held AS MATERIALIZED (
            SELECT turn_id FROM reply_parts WHERE held_at IS NOT NULL)
        SELECT 1 FROM held h JOIN turns t ON t.id = h.turn_id
        WHERE t.phone_number_id = p_pnid AND t.customer = p_customer);
END
$fn$;

DROP INDEX inbound_pending_by_lane;
DROP INDEX memory_created_at;
CREATE INDEX memory_created_at_brin ON memory USING brin (created_at);

-- The conversation's lease row, locked for the caller's transaction: one row (its owner, NULL
-- when free, and whether its lease ran out), or none when another claim or write holds it
-- (FOR UPDATE SKIP LOCKED). The conversation's first claim makes the row (the insert waits for
-- a concurrent first claim's commit) and looks again.
CREATE FUNCTION wagate_lock_lease(p_pnid TEXT, p_customer TEXT)
RETURNS TABLE (owner TEXT, expired BOOLEAN)
LANGUAGE plpgsql AS $fn$
BEGIN
    RETURN QUERY SELECT l.owner, l.expires_at < now() FROM leases l
        WHERE l.phone_number_id = p_pnid AND l.customer = p_customer
        FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        INSERT INTO leases (phone_number_id, customer) VALUES (p_pnid, p_customer)
        ON CONFLICT (phone_number_id, customer) DO NOTHING;
        RETURN QUERY SELECT l.owner, l.expires_at < now() FROM leases l
            WHERE l.phone_number_id = p_pnid AND l.customer = p_customer
            FOR UPDATE SKIP LOCKED;
    END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION wagate_take_pending(
    p_pnid TEXT, p_customer TEXT, p_replica TEXT, p_lease_ms FLOAT8, p_limit INTEGER,
    p_now BIGINT, p_taken_over BOOLEAN)
RETURNS SETOF wagate_claimed
LANGUAGE plpgsql AS $fn$
DECLARE
    v_seqs  BIGINT[];
    v_fence BIGINT;
    v_turn  BIGINT;
    v_held  BOOLEAN;
BEGIN
    SELECT array_agg(s.seq ORDER BY s.seq) INTO v_seqs FROM (
        SELECT i.seq FROM inbound i
        WHERE i.phone_number_id = p_pnid AND i.customer = p_customer AND i.state = 'pending'
        ORDER BY i.seq LIMIT p_limit) s;
    IF v_seqs IS NULL THEN
        RETURN;
    END IF;
    v_fence := wagate_take_lease(p_pnid, p_customer, p_replica, p_lease_ms);
    INSERT INTO turns (phone_number_id, customer, state, attempts, started_at)
    VALUES (p_pnid, p_customer, 'running', 1, p_now)
    RETURNING id INTO v_turn;
    v_held := wagate_has_held(p_pnid, p_customer);
    RETURN QUERY
        WITH i AS (
            UPDATE inbound SET state = 'taken', turn_id = v_turn
            WHERE phone_number_id = p_pnid AND customer = p_customer
              AND seq = ANY (v_seqs) AND state = 'pending'
            RETURNING seq, message_id, phone_number_id, display_phone_number, customer,
                      contact_name, kind, meta_timestamp)
        SELECT v_turn, 0, v_fence, p_taken_over, v_held,
               i.seq, i.message_id, i.phone_number_id, i.display_phone_number, i.customer,
               i.contact_name, i.kind, i.meta_timestamp, r.raw
        FROM i JOIN inbound_raw r ON r.seq = i.seq
        ORDER BY i.seq;
END
$fn$;

CREATE OR REPLACE FUNCTION wagate_claim(
    p_pnid TEXT, p_customer TEXT, p_replica TEXT, p_lease_ms FLOAT8, p_limit INTEGER,
    p_now BIGINT, p_resume BOOLEAN)
RETURNS SETOF wagate_claimed
LANGUAGE plpgsql AS $fn$
DECLARE
    v_owner      TEXT;
    v_expired    BOOLEAN;
    v_taken_over BOOLEAN;
    v_turn       BIGINT;
    v_attempts   INTEGER;
    v_fence      BIGINT;
    v_held       BOOLEAN;
BEGIN
    SELECT l.owner, l.expired INTO v_owner, v_expired FROM wagate_lock_lease(p_pnid, p_customer) l;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- Free (owner NULL: closed normally, nothing running), ours, or another's expired lease.
    IF v_owner IS NULL OR v_owner = p_replica THEN
        v_taken_over := false;
    ELSIF v_expired THEN
        v_taken_over := true;
    ELSE
        RETURN;
    END IF;
    -- Only a lease that was not given up can have a turn running (a turn is only started
    -- under a lease taken for it, and the close that finishes it gives the lease up).
    IF v_owner IS NOT NULL THEN
        SELECT id, attempts INTO v_turn, v_attempts FROM turns
        WHERE phone_number_id = p_pnid AND customer = p_customer AND state = 'running'
        ORDER BY id LIMIT 1;
    END IF;
    IF v_turn IS NOT NULL THEN
        IF NOT p_resume THEN
            RETURN;
        END IF;
        UPDATE turns SET attempts = attempts + 1 WHERE id = v_turn;
        IF EXISTS (SELECT 1 FROM inbound
                   WHERE phone_number_id = p_pnid AND customer = p_customer
                     AND turn_id = v_turn AND state = 'taken') THEN
            v_fence := wagate_take_lease(p_pnid, p_customer, p_replica, p_lease_ms);
            v_held := wagate_has_held(p_pnid, p_customer);
            RETURN QUERY
                SELECT v_turn, GREATEST(v_attempts, 0), v_fence, v_taken_over, v_held,
                       i.seq, i.message_id, i.phone_number_id, i.display_phone_number,
                       i.customer, i.contact_name, i.kind, i.meta_timestamp, r.raw
                FROM inbound i JOIN inbound_raw r ON r.seq = i.seq
                WHERE i.phone_number_id = p_pnid AND i.customer = p_customer
                  AND i.turn_id = v_turn AND i.state = 'taken' ORDER BY i.seq;
            RETURN;
        END IF;
        -- A running turn without messages cannot be answered: close it, look for new work.
        UPDATE turns SET state = 'failed', finished_at = p_now, error = 'turn had no messages'
        WHERE id = v_turn;
    END IF;
    RETURN QUERY SELECT * FROM wagate_take_pending(
        p_pnid, p_customer, p_replica, p_lease_ms, p_limit, p_now, v_taken_over);
END
$fn$;

CREATE OR REPLACE FUNCTION wagate_finish(
    p_turn BIGINT, p_replica TEXT, p_fences BIGINT[], p_turn_state TEXT, p_message_state TEXT,
    p_error TEXT, p_retry BOOLEAN, p_claim_next BOOLEAN, p_lease_ms FLOAT8, p_limit INTEGER,
    p_now BIGINT)
RETURNS SETOF wagate_finished
LANGUAGE plpgsql AS $fn$
DECLARE
    v_pnid     TEXT;
    v_customer TEXT;
    v_fence    BIGINT;
    v_result   wagate_finished;
BEGIN
    SELECT l.phone_number_id, l.customer, l.fence INTO v_pnid, v_customer, v_fence
    FROM leases l JOIN turns t ON t.phone_number_id = l.phone_number_id AND t.customer = l.customer
    WHERE t.id = p_turn AND l.owner = p_replica AND l.fence = ANY (p_fences)
    FOR UPDATE OF l;
    IF NOT FOUND THEN
        v_result.status := 'lost';
        RETURN NEXT v_result;
        RETURN;
    END IF;
    v_result.lane_pnid := v_pnid;
    v_result.lane_customer := v_customer;
    v_result.closed_fence := v_fence;
    IF p_retry THEN
        UPDATE turns SET error = p_error WHERE id = p_turn;
        PERFORM set_config('synchronous_commit', 'off', true);
        v_result.status := 'kept';
        RETURN NEXT v_result;
        RETURN;
    END IF;
    UPDATE turns SET state = p_turn_state, finished_at = p_now, error = p_error WHERE id = p_turn;
    UPDATE inbound SET state = p_message_state, note = p_error
    WHERE phone_number_id = v_pnid AND customer = v_customer
      AND turn_id = p_turn AND state = 'taken';
    -- The next turn, if the conversation has messages waiting (usually none: the function
    -- is not called then).
    IF p_claim_next AND EXISTS (
            SELECT 1 FROM inbound
            WHERE phone_number_id = v_pnid AND customer = v_customer AND state = 'pending') THEN
        RETURN QUERY
            SELECT 'next'::TEXT, v_pnid, v_customer, v_fence, c.*
            FROM wagate_take_pending(v_pnid, v_customer, p_replica, p_lease_ms, p_limit, p_now,
                                     false) c;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    UPDATE leases SET owner = NULL, expires_at = now()
    WHERE phone_number_id = v_pnid AND customer = v_customer;
    -- A close needs no flush of its own (src/inbox/store/postgres/parts.rs, `Flush`): lost
    -- to a PostgreSQL crash, the turn is resumed and finds its parts sent. A close that
    -- claimed the next turn is flushed: its new fence must never be handed out twice.
    PERFORM set_config('synchronous_commit', 'off', true);
    v_result.status := 'closed';
    RETURN NEXT v_result;
END
$fn$;

-- A webhook's messages of one conversation, recorded and (when the dispatcher reserved the
-- conversation: p_claim) its turn claimed, in one statement: the intake's transaction of
-- four (the conversation's state, the rows with their JSON, the claim, COMMIT) with the claim's
-- own nine inside it (src/inbox/store/postgres/intake.rs says when it is used). When the
-- conversation is free and nothing of it waits, its new messages are inserted already taken by
-- their turn instead of pending and then updated: a message row is written twice, not three
-- times. Otherwise the same steps as `wagate_claim` after the insert.
--
-- Rows: one per message inserted (`inserted_id`, `inserted_state`; the rest NULL; a
-- redelivered message has none), then the claimed turn's, as `wagate_claimed`'s (columns
-- spelled out after the first two: the driver reads flat rows).
CREATE TYPE wagate_recorded AS (
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
    raw                  TEXT
);

CREATE FUNCTION wagate_record_lane(
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
            JOIN unnest(p_ids, p_raws) AS a(id, raw) ON a.id = i.message_id
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

-- The shared rate limit counted the slots in the window by summing every grant still in it
-- on each call (a scan of window × rate / batch rows, the costliest statement of a message at
-- 300 msg/s with a 1 s window, and worse with longer ones). The channel row now keeps that
-- sum (`counted`), changed under its lock with every grant, settlement and expiry, so a
-- call reads no more than the grants that just left the window.
ALTER TABLE rate_limit_channels ADD COLUMN counted BIGINT NOT NULL DEFAULT 0;
UPDATE rate_limit_channels ch
   SET counted = COALESCE((SELECT SUM(g.slots) FROM rate_limit_grants g
                           WHERE g.channel = ch.channel), 0);

-- The same rule as migration 2's (src/inbox/store/postgres/rate_limit.rs proves it): under
-- the channel's row lock, settle the caller's previous grant, drop the grants a window past
-- their expiry, grant min(want, max - counted). `counted` is the sum of the slots of the
-- channel's grants left in the table, which are exactly those still counted in the window.
CREATE OR REPLACE FUNCTION wagate_reserve_send_slots(
    p_channel TEXT, p_want INTEGER, p_max INTEGER, p_window_ms BIGINT, p_lease_ms BIGINT,
    p_settle_id BIGINT, p_settle_used INTEGER, p_settle_within_ms BIGINT)
RETURNS TABLE (grant_id BIGINT, granted INTEGER, retry_in_ms BIGINT)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_paused  BIGINT;
    v_clock   BIGINT;
    v_counted BIGINT;
    v_slots   INTEGER;
    v_freed   BIGINT;
    v_now     BIGINT;
    v_oldest  BIGINT;
    v_give    BIGINT := 0;
    v_retry   BIGINT := 0;
    v_id      BIGINT := 0;
BEGIN
    SELECT paused_until, grant_clock, counted INTO v_paused, v_clock, v_counted
      FROM rate_limit_channels WHERE channel = p_channel FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO rate_limit_channels (channel) VALUES (p_channel) ON CONFLICT DO NOTHING;
        SELECT paused_until, grant_clock, counted INTO v_paused, v_clock, v_counted
          FROM rate_limit_channels WHERE channel = p_channel FOR UPDATE;
    END IF;
    IF p_settle_id IS NOT NULL THEN
        UPDATE rate_limit_grants g
           SET slots = LEAST(g.slots, p_settle_used),
               expires_at = LEAST(g.expires_at, g.granted_at + p_settle_within_ms)
          FROM (SELECT slots FROM rate_limit_grants
                WHERE id = p_settle_id AND channel = p_channel) old
         WHERE g.id = p_settle_id AND g.channel = p_channel
        RETURNING old.slots - g.slots INTO v_slots;
        v_counted := v_counted - COALESCE(v_slots, 0);
    END IF;
    -- Read after the lock: grants are ordered by this instant, which never goes back.
    v_now := GREATEST((extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, v_clock);
    WITH gone AS (
        DELETE FROM rate_limit_grants
        WHERE channel = p_channel AND expires_at <= v_now - p_window_ms
        RETURNING slots)
    SELECT COALESCE(SUM(slots), 0) INTO v_freed FROM gone;
    v_counted := v_counted - v_freed;
    IF v_paused > v_now THEN
        v_retry := v_paused - v_now;
    ELSE
        v_give := GREATEST(LEAST(p_want::BIGINT, p_max - v_counted), 0);
        IF v_give = 0 THEN
            SELECT MIN(expires_at) INTO v_oldest FROM rate_limit_grants WHERE channel = p_channel;
            v_retry := GREATEST(COALESCE(v_oldest, v_now) + p_window_ms - v_now, 1);
        ELSE
            INSERT INTO rate_limit_grants (channel, slots, granted_at, expires_at)
                 VALUES (p_channel, v_give, v_now, v_now + p_lease_ms)
              RETURNING id INTO v_id;
            v_counted := v_counted + v_give;
        END IF;
    END IF;
    UPDATE rate_limit_channels
       SET counted = v_counted, grant_clock = CASE WHEN v_give > 0 THEN v_now ELSE grant_clock END
     WHERE channel = p_channel;
    RETURN QUERY SELECT v_id, v_give::INTEGER, v_retry;
END
$fn$;
