//! Tests: the store's behaviour on both backends. `on_both_backends!` runs each test body
//! twice, as `<test>::sqlite` (a temporary directory) and `<test>::postgres` (a fresh database
//! from `WAGATE_TEST_POSTGRES_URL`; skipped with how to run it when unset).

use super::postgres::testdb::TestDb;
use super::{Batch, Durability, InboundState, NewInbound, Store};
use crate::inbox::LaneKey;

/// Where a test's store lives.
pub(crate) enum Backing {
    Sqlite(tempfile::TempDir),
    Postgres(TestDb),
}

impl Backing {
    pub(crate) fn sqlite() -> Backing {
        Backing::Sqlite(tempfile::tempdir().expect("a temporary directory"))
    }

    pub(crate) async fn postgres() -> Option<Backing> {
        TestDb::fresh().await.map(Backing::Postgres)
    }

    /// A store on it (again, after a "crash": a new process, on PostgreSQL a new replica).
    pub(crate) async fn open(&self) -> Store {
        match self {
            Backing::Sqlite(dir) => Store::open(dir.path(), Durability::Normal).expect("opens"),
            Backing::Postgres(db) => Store::open_postgres(&db.database_url())
                .await
                .expect("opens"),
        }
    }

    /// After a store was dropped mid-turn (kill -9): on PostgreSQL its leases have run out,
    /// as after the lease expiry, without waiting for it.
    pub(crate) async fn after_crash(&self) {
        if let Backing::Postgres(db) = self {
            db.expire_leases().await;
        }
    }

    /// The first column of the first row of `sql` (the same SQL on both), as text.
    pub(crate) async fn query_text(&self, store: &Store, sql: &'static str) -> String {
        match self {
            Backing::Sqlite(_) => store
                .call(move |c| {
                    c.query_row(&format!("SELECT CAST(({sql}) AS TEXT)"), [], |r| r.get(0))
                })
                .await
                .expect("the query runs"),
            Backing::Postgres(db) => db.query_text(sql).await,
        }
    }
}

/// `async fn name(db: Backing) { ... }` → `mod name { fn sqlite(); fn postgres(); }`.
macro_rules! on_both_backends {
    ($(
        $(#[$meta:meta])*
        async fn $name:ident($db:ident: Backing) $body:block
    )*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use crate::inbox::store::both_backends::Backing;

            async fn run($db: Backing) $body

            $(#[$meta])*
            #[tokio::test]
            async fn sqlite() {
                run(Backing::sqlite()).await
            }

            $(#[$meta])*
            #[tokio::test]
            async fn postgres() {
                if let Some(db) = Backing::postgres().await {
                    run(db).await
                }
            }
        }
    )*};
}

// One conversation's text messages, as the shared store tests record them.

pub(crate) fn lane(user: &str) -> LaneKey {
    LaneKey {
        phone_number_id: "PNID".into(),
        user: user.into(),
    }
}

pub(crate) fn message(id: &str, user: &str) -> NewInbound {
    NewInbound {
        message_id: id.into(),
        lane: lane(user),
        display_phone_number: "15550000000".into(),
        contact_name: Some("Ana".into()),
        kind: "text".into(),
        timestamp: 1_700_000_000,
        raw: format!(r#"{{"id":"{id}","type":"text","text":{{"body":"hi {id}"}}}}"#),
        json: None,
        state: InboundState::Pending,
        note: None,
    }
}

pub(crate) fn batch(messages: Vec<NewInbound>) -> Batch {
    Batch {
        messages,
        ..Batch::default()
    }
}
