//! The workload through tokio-postgres and deadpool-postgres, configured as wagate's store
//! configures them (`src/inbox/store/postgres/mod.rs`: fast recycling, statements prepared
//! once per connection with `prepare_cached`).

use crate::workload::*;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub fn pool(url: &str, size: usize) -> Result<Pool, Error> {
    let config: tokio_postgres::Config = url.parse()?;
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Ok(Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .build()?)
}

/// Open every connection of the pool at once; returns their server process ids.
pub async fn warm(pool: &Pool, size: usize) -> Result<Vec<i32>, Error> {
    let mut clients = Vec::with_capacity(size);
    for _ in 0..size {
        clients.push(pool.get().await?);
    }
    let mut pids = Vec::with_capacity(size);
    for c in &clients {
        pids.push(c.query_one("SELECT pg_backend_pid()", &[]).await?.get(0));
    }
    Ok(pids)
}

/// One fenced statement on a connection of its own: (lease held, rows written).
async fn fenced(
    pool: &Pool,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<(bool, i64), Error> {
    let c = pool.get().await?;
    let stmt = c.prepare_cached(sql).await?;
    let row = c.query_one(&stmt, params).await?;
    Ok((row.get(0), row.get(1)))
}

/// One message through the whole path; `Err` on any failure or a lease found lost.
pub async fn message(pool: &Pool, m: &Message) -> Result<(), Error> {
    let ms = LEASE_MS;
    // 1. Intake and claim.
    let (turn_id, fence) = {
        let mut c = pool.get().await?;
        let tx = c.transaction().await?;
        let insert = tx.prepare_cached(INSERT_INBOUND).await?;
        let now = now_millis();
        let seq: i64 = tx
            .query_one(
                &insert,
                &[
                    &m.message_id,
                    &m.phone_number_id,
                    &m.display_phone_number,
                    &m.customer,
                    &m.contact_name,
                    &m.meta_timestamp,
                    &now,
                ],
            )
            .await?
            .get(0);
        let raw = tx.prepare_cached(INSERT_RAW).await?;
        tx.execute(&raw, &[&seq, &m.raw]).await?;
        let ensure = tx.prepare_cached(ENSURE_LEASE).await?;
        tx.execute(&ensure, &[&m.phone_number_id, &m.customer])
            .await?;
        let lock = tx.prepare_cached(LOCK_LEASE).await?;
        tx.query_opt(&lock, &[&m.phone_number_id, &m.customer])
            .await?
            .ok_or("the lease row is locked by someone else")?;
        let take = tx.prepare_cached(TAKE_LEASE).await?;
        let fence: i64 = tx
            .query_one(&take, &[&m.phone_number_id, &m.customer, &REPLICA, &ms])
            .await?
            .get(0);
        let turn = tx.prepare_cached(INSERT_TURN).await?;
        let turn_id: i64 = tx
            .query_one(&turn, &[&m.phone_number_id, &m.customer, &now])
            .await?
            .get(0);
        let taken = tx.prepare_cached(TAKE_MESSAGES).await?;
        tx.execute(&taken, &[&turn_id, &vec![seq]]).await?;
        tx.commit().await?;
        (turn_id, fence)
    };
    let fences = vec![fence];

    // 2. The memory window.
    {
        let c = pool.get().await?;
        let stmt = c.prepare_cached(MEMORY_WINDOW_SQL).await?;
        let since = now_millis() / 1000 - 86_400;
        let rows = c
            .query(&stmt, &[&m.memory_key, &since, &MEMORY_WINDOW])
            .await?;
        for r in &rows {
            let _: (i64, String, String, i64, Option<String>) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        }
    }

    // 3. The reply saved, then read back.
    let idx = vec![0i32];
    let texts = vec![m.reply_text.as_str()];
    let json: Vec<Option<&str>> = vec![None];
    let (held, _) = fenced(
        pool,
        SAVE_REPLY,
        &[&turn_id, &REPLICA, &fences, &idx, &texts, &json],
    )
    .await?;
    if !held {
        return Err("lease lost saving the reply".into());
    }
    {
        let c = pool.get().await?;
        let stmt = c.prepare_cached(LOAD_REPLY).await?;
        let rows = c.query(&stmt, &[&turn_id]).await?;
        for r in &rows {
            let _: (
                i32,
                String,
                Option<String>,
                Option<i64>,
                Option<String>,
                Option<i64>,
            ) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
        }
    }

    // 4. The part sending, then sent.
    let part = 0i32;
    let now = now_millis();
    let (held, written) = fenced(
        pool,
        MARK_SENDING,
        &[&turn_id, &REPLICA, &fences, &part, &now],
    )
    .await?;
    if !held || written != 1 {
        return Err("lease lost marking the part sending".into());
    }
    let now = now_millis();
    let (held, _) = fenced(
        pool,
        MARK_SENT,
        &[&turn_id, &REPLICA, &fences, &part, &m.outbound_id, &now],
    )
    .await?;
    if !held {
        return Err("lease lost marking the part sent".into());
    }

    // 5. Memory appended.
    let positions = vec![0i32, 1];
    let roles = vec!["user", "assistant"];
    let contents = vec![m.user_text.as_str(), m.reply_text.as_str()];
    let created = vec![now / 1000, now / 1000];
    let media: Vec<Option<&str>> = vec![None, None];
    let (held, _) = fenced(
        pool,
        APPEND_MEMORY,
        &[
            &turn_id,
            &REPLICA,
            &fences,
            &m.memory_key,
            &positions,
            &roles,
            &contents,
            &created,
            &media,
        ],
    )
    .await?;
    if !held {
        return Err("lease lost appending memory".into());
    }

    // 6. Finish.
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let lane = tx.prepare_cached(FENCED_LANE).await?;
    let row = tx
        .query_opt(&lane, &[&turn_id, &REPLICA, &fences])
        .await?
        .ok_or("lease lost at finish")?;
    let (pnid, customer): (String, String) = (row.get(0), row.get(1));
    let close = tx.prepare_cached(CLOSE_TURN).await?;
    let now = now_millis();
    let error: Option<&str> = None;
    tx.execute(&close, &[&turn_id, &"done", &now, &error])
        .await?;
    let messages = tx.prepare_cached(CLOSE_MESSAGES).await?;
    tx.execute(&messages, &[&turn_id, &"done", &error]).await?;
    let release = tx.prepare_cached(RELEASE_LEASE).await?;
    tx.execute(&release, &[&pnid, &customer]).await?;
    tx.commit().await?;
    Ok(())
}

/// Empty the tables and checkpoint, so each run starts alike (not measured).
pub async fn reset(url: &str) -> Result<(), Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    let conn = tokio::spawn(connection);
    client.batch_execute(RESET).await?;
    client.batch_execute("CHECKPOINT").await?;
    drop(client);
    let _ = conn.await;
    Ok(())
}
