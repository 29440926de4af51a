-- Version 3: a turn's claim and its close, each one statement on the server.
--
-- Claiming a conversation's turn took seven statements (lease row, lease lock, interrupted
-- turn, fence, new turn, its messages, their state) and closing it five more plus BEGIN and
-- COMMIT, each a round trip with the transaction open meanwhile (BENCHMARKS.md, "Several
-- replicas on PostgreSQL"). The same steps, in the same order and under the same locks, now
-- run inside the server (src/inbox/store/postgres/lease.rs and turns.rs say what each step
-- guarantees).

-- A lease row changes with every claim and close and is locked by every fenced write, many
-- times a second for a busy conversation. Without an index on `owner` (the heartbeat and the
-- hand-back at shutdown find their rows by key) and with room left on each page, those
-- updates are HOT: the new version stays on the page and no index grows, so a lookup does not
-- walk a chain of dead versions until autovacuum comes by.
DROP INDEX leases_by_owner;
ALTER TABLE leases SET (fillfactor = 50);

-- Every change of a message's state writes a new row version into each of `inbound`'s B-trees
-- (`state` is in their predicates, so no update is HOT). The purge's index on arrival time is
-- a BRIN instead: rows arrive in time order, so a few pages cover the table and a write costs
-- next to nothing (as the purge's other indexes, migration 2).
DROP INDEX inbound_received_at;
CREATE INDEX inbound_received_at_brin ON inbound USING brin (received_at);

-- These tables work as queues: every message leaves a few dead row versions (and dead entries
-- in the partial indexes that find open work). Vacuum them after 2% of their rows changed, not
-- PostgreSQL's default 20%, so those lookups stay short on a large, long-lived database.
ALTER TABLE inbound SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE turns SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE reply_parts SET (autovacuum_vacuum_scale_factor = 0.02);
ALTER TABLE leases SET (autovacuum_vacuum_scale_factor = 0.02);

-- A claimed turn, one row per message (none: nothing claimed). `taken_over`: the lease was
-- another replica's (expired, or handed back with its turns running), so parts that replica
-- left `sending` wait for their status. `has_held`: the conversation has parts held for the
-- 24-hour window, which the turn sends first.
CREATE TYPE wagate_claimed AS (
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

-- Whether the conversation has parts held for the 24-hour window (the partial index holds
-- only held parts, usually none). PL/pgSQL, so its plan is kept per connection.
CREATE FUNCTION wagate_has_held(p_pnid TEXT, p_customer TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM reply_parts p JOIN turns t ON t.id = p.turn_id
        WHERE p.held_at IS NOT NULL AND t.phone_number_id = p_pnid AND t.customer = p_customer);
END
$fn$;

-- Take the conversation's lease row (locked by the caller's transaction) for this replica with
-- a new fence, valid p_lease_ms; returns the fence.
CREATE FUNCTION wagate_take_lease(
    p_pnid TEXT, p_customer TEXT, p_replica TEXT, p_lease_ms FLOAT8) RETURNS BIGINT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_fence BIGINT;
BEGIN
    UPDATE leases SET owner = p_replica, fence = nextval('lease_fence'),
        expires_at = now() + p_lease_ms * interval '1 millisecond', taken_at = now()
    WHERE phone_number_id = p_pnid AND customer = p_customer
    RETURNING fence INTO v_fence;
    RETURN v_fence;
END
$fn$;

-- The conversation's oldest pending messages (at most p_limit) as a new turn, for a caller
-- whose transaction holds the conversation's lease row locked: the lease gets a new fence.
CREATE FUNCTION wagate_take_pending(
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
            WHERE seq = ANY (v_seqs) AND state = 'pending'
            RETURNING seq, message_id, phone_number_id, display_phone_number, customer,
                      contact_name, kind, meta_timestamp)
        SELECT v_turn, 0, v_fence, p_taken_over, v_held,
               i.seq, i.message_id, i.phone_number_id, i.display_phone_number, i.customer,
               i.contact_name, i.kind, i.meta_timestamp, r.raw
        FROM i JOIN inbound_raw r ON r.seq = i.seq
        ORDER BY i.seq;
END
$fn$;

-- The conversation's next turn: its lease first (nothing when another live replica has it or
-- is claiming or writing it: FOR UPDATE SKIP LOCKED), then its interrupted turn (with
-- p_resume; without, as at intake, nothing: the lane's own claim resumes it first), else its
-- oldest pending messages as a new turn.
CREATE FUNCTION wagate_claim(
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
    SELECT owner, expires_at < now() INTO v_owner, v_expired FROM leases
    WHERE phone_number_id = p_pnid AND customer = p_customer
    FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        -- Locked by another claim or write (skipped), or the conversation's first claim: make
        -- its row (the insert waits for a concurrent first claim's commit) and look again.
        INSERT INTO leases (phone_number_id, customer) VALUES (p_pnid, p_customer)
        ON CONFLICT (phone_number_id, customer) DO NOTHING;
        SELECT owner, expires_at < now() INTO v_owner, v_expired FROM leases
        WHERE phone_number_id = p_pnid AND customer = p_customer
        FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            RETURN;
        END IF;
    END IF;
    -- Free (owner NULL: closed normally, nothing running), ours, or another's expired lease.
    IF v_owner IS NULL OR v_owner = p_replica THEN
        v_taken_over := false;
    ELSIF v_expired THEN
        v_taken_over := true;
    ELSE
        RETURN;
    END IF;
    SELECT id, attempts INTO v_turn, v_attempts FROM turns
    WHERE phone_number_id = p_pnid AND customer = p_customer AND state = 'running'
    ORDER BY id LIMIT 1;
    IF FOUND THEN
        IF NOT p_resume THEN
            RETURN;
        END IF;
        UPDATE turns SET attempts = attempts + 1 WHERE id = v_turn;
        IF EXISTS (SELECT 1 FROM inbound WHERE turn_id = v_turn AND state = 'taken') THEN
            v_fence := wagate_take_lease(p_pnid, p_customer, p_replica, p_lease_ms);
            v_held := wagate_has_held(p_pnid, p_customer);
            RETURN QUERY
                SELECT v_turn, GREATEST(v_attempts, 0), v_fence, v_taken_over, v_held,
                       i.seq, i.message_id, i.phone_number_id, i.display_phone_number,
                       i.customer, i.contact_name, i.kind, i.meta_timestamp, r.raw
                FROM inbound i JOIN inbound_raw r ON r.seq = i.seq
                WHERE i.turn_id = v_turn AND i.state = 'taken' ORDER BY i.seq;
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

-- How closing a turn went: `lost` (another replica holds the conversation now: nothing
-- written), `kept` (a turn to retry stays the lane's, under the same lease), `closed` (lease
-- given up: nothing else pending) or `next` (one row per message of the next turn, claimed in
-- the same transaction with a new fence). The lane and the fence the turn ran under come with
-- every status but `lost`. After those four columns, `wagate_claimed`'s, spelled out: the
-- driver reads flat rows, not a nested composite.
CREATE TYPE wagate_finished AS (
    status               TEXT,
    lane_pnid            TEXT,
    lane_customer        TEXT,
    closed_fence         BIGINT,
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

-- Close a turn under this replica's fence (its lease row locked for the transaction) and,
-- with p_claim_next, take the lane's next pending messages; with nothing next, give the
-- lease up. p_retry: the turn stays running (its error noted) under the same lease.
CREATE FUNCTION wagate_finish(
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
    WHERE turn_id = p_turn AND state = 'taken';
    IF p_claim_next THEN
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
