//! The same workload through sqlx's own pool. `sqlx::query` prepares each statement once per
//! connection and caches it (its default, `persistent(true)`), the counterpart of
//! `prepare_cached`. The pool does not ping a connection before handing it out
//! (`test_before_acquire(false)`), as deadpool's fast recycling does not either; sqlx's default
//! (`true`) would add a round trip to every checkout, and `--sqlx-ping` measures that too.

use crate::workload::*;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, Row};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub async fn pool(url: &str, size: u32, ping: bool) -> Result<PgPool, Error> {
    Ok(PgPoolOptions::new()
        .max_connections(size)
        .min_connections(size)
        .test_before_acquire(ping)
        .connect(url)
        .await?)
}

/// Open every connection of the pool at once; returns their server process ids.
pub async fn warm(pool: &PgPool, size: u32) -> Result<Vec<i32>, Error> {
    let mut conns = Vec::with_capacity(size as usize);
    for _ in 0..size {
        conns.push(pool.acquire().await?);
    }
    let mut pids = Vec::with_capacity(size as usize);
    for c in &mut conns {
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut **c)
            .await?;
        c.ping().await?;
        pids.push(pid);
    }
    Ok(pids)
}

/// One message through the whole path; `Err` on any failure or a lease found lost.
pub async fn message(pool: &PgPool, m: &Message) -> Result<(), Error> {
    // 1. Intake and claim.
    let (turn_id, fence) = {
        let mut tx = pool.begin().await?;
        let now = now_millis();
        let seq: i64 = sqlx::query(INSERT_INBOUND)
            .bind(&m.message_id)
            .bind(m.phone_number_id)
            .bind(m.display_phone_number)
            .bind(&m.customer)
            .bind(m.contact_name)
            .bind(m.meta_timestamp)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        sqlx::query(INSERT_RAW)
            .bind(seq)
            .bind(&m.raw)
            .execute(&mut *tx)
            .await?;
        sqlx::query(ENSURE_LEASE)
            .bind(m.phone_number_id)
            .bind(&m.customer)
            .execute(&mut *tx)
            .await?;
        sqlx::query(LOCK_LEASE)
            .bind(m.phone_number_id)
            .bind(&m.customer)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or("the lease row is locked by someone else")?;
        let fence: i64 = sqlx::query(TAKE_LEASE)
            .bind(m.phone_number_id)
            .bind(&m.customer)
            .bind(REPLICA)
            .bind(LEASE_MS)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let turn_id: i64 = sqlx::query(INSERT_TURN)
            .bind(m.phone_number_id)
            .bind(&m.customer)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        sqlx::query(TAKE_MESSAGES)
            .bind(turn_id)
            .bind(vec![seq])
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        (turn_id, fence)
    };
    let fences = vec![fence];

    // 2. The memory window.
    let since = now_millis() / 1000 - 86_400;
    let rows = sqlx::query(MEMORY_WINDOW_SQL)
        .bind(&m.memory_key)
        .bind(since)
        .bind(MEMORY_WINDOW)
        .fetch_all(pool)
        .await?;
    for r in &rows {
        let _: (i64, String, String, i64, Option<String>) = (
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            r.try_get(4)?,
        );
    }

    // 3. The reply saved, then read back.
    let row = sqlx::query(SAVE_REPLY)
        .bind(turn_id)
        .bind(REPLICA)
        .bind(&fences)
        .bind(vec![0i32])
        .bind(vec![m.reply_text.as_str()])
        .bind(vec![None::<&str>])
        .fetch_one(pool)
        .await?;
    if !row.try_get::<bool, _>(0)? {
        return Err("lease lost saving the reply".into());
    }
    let rows = sqlx::query(LOAD_REPLY)
        .bind(turn_id)
        .fetch_all(pool)
        .await?;
    for r in &rows {
        let _: (
            i32,
            String,
            Option<String>,
            Option<i64>,
            Option<String>,
            Option<i64>,
        ) = (
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            r.try_get(4)?,
            r.try_get(5)?,
        );
    }

    // 4. The part sending, then sent.
    let now = now_millis();
    let row = sqlx::query(MARK_SENDING)
        .bind(turn_id)
        .bind(REPLICA)
        .bind(&fences)
        .bind(0i32)
        .bind(now)
        .fetch_one(pool)
        .await?;
    if !row.try_get::<bool, _>(0)? || row.try_get::<i64, _>(1)? != 1 {
        return Err("lease lost marking the part sending".into());
    }
    let now = now_millis();
    let row = sqlx::query(MARK_SENT)
        .bind(turn_id)
        .bind(REPLICA)
        .bind(&fences)
        .bind(0i32)
        .bind(&m.outbound_id)
        .bind(now)
        .fetch_one(pool)
        .await?;
    if !row.try_get::<bool, _>(0)? {
        return Err("lease lost marking the part sent".into());
    }

    // 5. Memory appended.
    let row = sqlx::query(APPEND_MEMORY)
        .bind(turn_id)
        .bind(REPLICA)
        .bind(&fences)
        .bind(&m.memory_key)
        .bind(vec![0i32, 1])
        .bind(vec!["user", "assistant"])
        .bind(vec![m.user_text.as_str(), m.reply_text.as_str()])
        .bind(vec![now / 1000, now / 1000])
        .bind(vec![None::<&str>, None])
        .fetch_one(pool)
        .await?;
    if !row.try_get::<bool, _>(0)? {
        return Err("lease lost appending memory".into());
    }

    // 6. Finish.
    let mut tx = pool.begin().await?;
    let row = sqlx::query(FENCED_LANE)
        .bind(turn_id)
        .bind(REPLICA)
        .bind(&fences)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or("lease lost at finish")?;
    let (pnid, customer): (String, String) = (row.try_get(0)?, row.try_get(1)?);
    let now = now_millis();
    sqlx::query(CLOSE_TURN)
        .bind(turn_id)
        .bind("done")
        .bind(now)
        .bind(None::<&str>)
        .execute(&mut *tx)
        .await?;
    sqlx::query(CLOSE_MESSAGES)
        .bind(turn_id)
        .bind("done")
        .bind(None::<&str>)
        .execute(&mut *tx)
        .await?;
    sqlx::query(RELEASE_LEASE)
        .bind(&pnid)
        .bind(&customer)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
