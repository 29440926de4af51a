//! Tests: a fresh PostgreSQL database per test, made from `WAGATE_TEST_POSTGRES_URL` (an
//! administrator's URL, see `.ci/components.sh`) and dropped when the guard goes. Without the
//! variable the test is skipped with how to run it (as `tests/support/external.rs` does for the
//! integration tests; fails instead under `WAGATE_REQUIRE_EXTERNAL=1`).

use super::DatabaseUrl;
use tokio_postgres::NoTls;

/// `tests/support/external.rs::component`, for the tests inside the crate.
pub(crate) fn component(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Some(value),
        _ => {
            let how = format!(
                "{what} is not available: set {var} (see .ci/run, which installs it and sets it), \
                 or run .ci/run to run these tests"
            );
            if std::env::var("WAGATE_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
                panic!("WAGATE_REQUIRE_EXTERNAL=1 but {how}");
            }
            eprintln!("skipped: {how}");
            None
        }
    }
}

/// A database of its own for one test.
pub(crate) struct TestDb {
    admin: String,
    name: String,
    /// Its URL (`sslmode=disable`: the test cluster is on 127.0.0.1).
    pub(crate) url: String,
}

impl TestDb {
    /// `None` (the test skips) without `WAGATE_TEST_POSTGRES_URL`.
    pub(crate) async fn fresh() -> Option<TestDb> {
        let admin = component("WAGATE_TEST_POSTGRES_URL", "PostgreSQL")?;
        let name = format!("wagate_t_{:016x}", rand::random::<u64>());
        let client = connect(&admin).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("the test cluster creates a database");
        let url = with_database(&admin, &name);
        Some(TestDb { admin, name, url })
    }

    pub(crate) fn database_url(&self) -> DatabaseUrl {
        self.url.parse().expect("a test database URL")
    }

    /// A store on the test database, as a replica opens it (migrating it on the first open).
    pub(crate) async fn open_store(&self) -> crate::inbox::store::Store {
        crate::inbox::store::Store::open_postgres(&self.database_url())
            .await
            .expect("the store opens")
    }

    /// Run SQL on the test database (outside any store): to look, or to move time on.
    pub(crate) async fn execute(&self, sql: &str) {
        connect(&self.url)
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Run SQL on the cluster's administrative database (to make this one unreachable).
    pub(crate) async fn execute_as_admin(&self, sql: &str) {
        connect(&self.admin)
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The first column of the first row of `sql`, as text.
    pub(crate) async fn query_text(&self, sql: &str) -> String {
        connect(&self.url)
            .await
            .query_one(&format!("SELECT ({sql})::text"), &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }

    /// A connection of its own to the test database (outside any store).
    pub(crate) async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    /// Every lease runs out now: what a replica killed with kill -9 leaves after [`LEASE`]
    /// (super::lease::LEASE), without waiting for it.
    pub(crate) async fn expire_leases(&self) {
        self.execute("UPDATE leases SET expires_at = now() - interval '1 second'")
            .await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime: the DROP gets a thread and a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                if let Ok((client, connection)) = tokio_postgres::connect(&admin, NoTls).await {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test cluster: {e}"));
    tokio::spawn(connection);
    client
}

/// `url` naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    let mut url = format!("{base}/{name}");
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    url
}

#[test]
fn a_test_database_url_keeps_everything_but_the_database() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:55432/postgres", "t1"),
        "postgres://postgres@127.0.0.1:55432/t1"
    );
    assert_eq!(
        with_database("postgresql://u:p@h?sslmode=disable", "t2"),
        "postgresql://u:p@h/t2?sslmode=disable"
    );
}
