-- Version 2: the channel rate limit shared by every replica, the retention purge's bookkeeping,
-- the outbox claims of several replicas, and the indexes the operator views and the purge read by.

-- The shared rate limit (src/inbox/store/postgres/rate_limit.rs explains the rule and why it
-- holds): one row per channel, locked briefly by each grant of a few send slots; one row per
-- grant, counted in the window until its expiry is a window old.
CREATE TABLE rate_limit_channels (
    channel      TEXT PRIMARY KEY,
    paused_until BIGINT NOT NULL DEFAULT 0,            -- unix ms: Meta's 130429 pauses every replica
    grant_clock  BIGINT NOT NULL DEFAULT 0             -- unix ms of the latest grant: never goes back
);
CREATE TABLE rate_limit_grants (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel     TEXT NOT NULL,
    slots       INTEGER NOT NULL,                      -- sends granted (shrunk to those used when settled)
    granted_at  BIGINT NOT NULL,                       -- unix ms, the database's clock
    expires_at  BIGINT NOT NULL                        -- no send of the grant after this (shrunk to the last use)
);
CREATE INDEX rate_limit_grants_by_expiry ON rate_limit_grants (channel, expires_at);

-- One batch of send slots: settle the caller's previous grant, then, under the channel's row
-- lock, grant min(want, max - slots still counted in the window). Returns the grant, or 0
-- slots and how long until room is expected (the pause, or the oldest grant ageing out).
CREATE FUNCTION wagate_reserve_send_slots(
    p_channel TEXT, p_want INTEGER, p_max INTEGER, p_window_ms BIGINT, p_lease_ms BIGINT,
    p_settle_id BIGINT, p_settle_used INTEGER, p_settle_within_ms BIGINT)
RETURNS TABLE (grant_id BIGINT, granted INTEGER, retry_in_ms BIGINT)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_paused BIGINT;
    v_clock  BIGINT;
    v_now    BIGINT;
    v_used   BIGINT;
    v_oldest BIGINT;
    v_give   BIGINT;
    v_id     BIGINT;
BEGIN
    IF p_settle_id IS NOT NULL THEN
        UPDATE rate_limit_grants
           SET slots = LEAST(slots, p_settle_used),
               expires_at = LEAST(expires_at, granted_at + p_settle_within_ms)
         WHERE id = p_settle_id AND channel = p_channel;
    END IF;
    SELECT paused_until, grant_clock INTO v_paused, v_clock
      FROM rate_limit_channels WHERE channel = p_channel FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO rate_limit_channels (channel) VALUES (p_channel) ON CONFLICT DO NOTHING;
        SELECT paused_until, grant_clock INTO v_paused, v_clock
          FROM rate_limit_channels WHERE channel = p_channel FOR UPDATE;
    END IF;
    -- Read after the lock: grants are ordered by this instant, which never goes back.
    v_now := GREATEST((extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, v_clock);
    IF v_paused > v_now THEN
        RETURN QUERY SELECT 0::BIGINT, 0, v_paused - v_now;
        RETURN;
    END IF;
    DELETE FROM rate_limit_grants WHERE channel = p_channel AND expires_at <= v_now - p_window_ms;
    SELECT COALESCE(SUM(slots), 0), MIN(expires_at) INTO v_used, v_oldest
      FROM rate_limit_grants WHERE channel = p_channel AND expires_at > v_now - p_window_ms;
    v_give := LEAST(p_want::BIGINT, p_max - v_used);
    IF v_give <= 0 THEN
        RETURN QUERY SELECT 0::BIGINT, 0, GREATEST(v_oldest + p_window_ms - v_now, 1);
        RETURN;
    END IF;
    INSERT INTO rate_limit_grants (channel, slots, granted_at, expires_at)
         VALUES (p_channel, v_give, v_now, v_now + p_lease_ms)
      RETURNING id INTO v_id;
    UPDATE rate_limit_channels SET grant_clock = v_now WHERE channel = p_channel;
    RETURN QUERY SELECT v_id, v_give::INTEGER, 0::BIGINT;
END
$fn$;

-- Retention (src/inbox/store/postgres/retention.rs): one purge per hour slot across the
-- deployment; the row says who ran it and what it deleted.
CREATE TABLE maintenance_runs (
    task        TEXT NOT NULL,
    slot        BIGINT NOT NULL,                       -- unix ms / slot length
    replica     TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,                                -- NULL: still running, or the replica died
    deleted     BIGINT,                                -- rows deleted, all tables together
    PRIMARY KEY (task, slot)
);
-- The purge finds old turns, outbox messages and statuses by time. BRIN: rows arrive in time
-- order, so a few index pages cover a table and an insert costs next to nothing (a B-tree
-- would add a write per message).
CREATE INDEX turns_started_brin ON turns USING brin (started_at);
CREATE INDEX outbox_created_brin ON outbox USING brin (created_at);
CREATE INDEX outbound_status_updated_brin ON outbound_status USING brin (updated_at);

-- A conversation's messages with what the 24-hour window reads (Meta's timestamp, arrival):
-- `last_customer_at` and `last_customer_timestamp` become index-only scans of one
-- conversation instead of a visit to every row of its history. Same key as before, so no
-- extra index to maintain on intake.
DROP INDEX inbound_by_lane;
CREATE INDEX inbound_by_lane ON inbound (phone_number_id, customer, seq)
    INCLUDE (meta_timestamp, received_at);

-- The outbox on several replicas (src/inbox/store/postgres/outbox.rs): each message is sent by
-- the replica that claimed it, until its claim runs out unrenewed (the replica died).
ALTER TABLE outbox ADD COLUMN claimed_by TEXT, ADD COLUMN claimed_until BIGINT;
