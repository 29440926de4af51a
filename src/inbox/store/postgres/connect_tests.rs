//! Reaching PostgreSQL: a server that is unreachable (the webhook's 503, `/readyz`, nothing
//! recorded), and TLS as `sslmode` says, against a real PostgreSQL with TLS on: a cluster of
//! the test's own (Debian's binaries from `WAGATE_TEST_POSTGRES_BIN`, run as the `postgres`
//! user, on its own port) with a certificate for `localhost` signed by a CA the test makes
//! with openssl.

use super::testdb::{component, TestDb};
use super::DatabaseUrl;
use crate::inbox::store::{Batch, InboundState, NewInbound, Store, StoreError};
use crate::inbox::LaneKey;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A TLS-enabled cluster, stopped when dropped.
struct TlsCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(command: &mut Command) {
    let out = command.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl(openssl: &str, dir: &Path, args: &[&str]) {
    run(Command::new(openssl).current_dir(dir).args(args));
}

fn start() -> Option<TlsCluster> {
    let bin = PathBuf::from(component(
        "WAGATE_TEST_POSTGRES_BIN",
        "PostgreSQL's binaries",
    )?);
    let openssl_bin = component("WAGATE_TEST_OPENSSL", "openssl")?;
    let dir = std::env::temp_dir().join(format!("wagate-tls-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let o = |args: &[&str]| openssl(&openssl_bin, &dir, args);
    o(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=wagate test CA",
        "-days",
        "1",
    ]);
    o(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    o(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "1",
        "-extfile",
        "san.ext",
    ]);
    run(Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(&dir));
    run(Command::new("chmod")
        .arg("0600")
        .arg(dir.join("server.key")));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cluster = TlsCluster { bin, dir, port };
    let data = cluster.dir.join("data");
    run(Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(cluster.bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"]));
    let options = format!(
        "-p {port} -k {} -c listen_addresses=localhost -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
        cluster.dir.display(),
        cluster.dir.join("server.crt").display(),
        cluster.dir.join("server.key").display()
    );
    run(Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(cluster.bin.join("pg_ctl"))
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(cluster.dir.join("server.log"))
        .args(["-w", "-o", &options, "start"]));
    Some(cluster)
}

#[tokio::test]
async fn verify_full_checks_the_chain_and_the_name_and_verify_ca_only_the_chain() {
    let Some(cluster) = start() else {
        return;
    };
    let ca = cluster.dir.join("ca.pem");
    let url = |host: &str, mode: &str, ca: Option<&Path>| -> DatabaseUrl {
        let mut url = format!(
            "postgres://postgres@{host}:{}/postgres?sslmode={mode}",
            cluster.port
        );
        if let Some(ca) = ca {
            url.push_str(&format!("&sslrootcert={}", ca.display()));
        }
        url.parse().unwrap()
    };
    Store::open_postgres(&url("localhost", "verify-full", Some(&ca)))
        .await
        .expect("the certificate names localhost and is signed by the CA");
    Store::open_postgres(&url("127.0.0.1", "verify-ca", Some(&ca)))
        .await
        .expect("verify-ca does not look at the name");
    let wrong_name = Store::open_postgres(&url("127.0.0.1", "verify-full", Some(&ca))).await;
    assert!(
        wrong_name.is_err(),
        "the certificate does not name 127.0.0.1"
    );
    let unknown_ca = Store::open_postgres(&url("localhost", "verify-full", None)).await;
    assert!(
        unknown_ca.is_err(),
        "a private CA is not among the public roots"
    );
    Store::open_postgres(&url("127.0.0.1", "require", None))
        .await
        .expect("require encrypts without checking");
}

fn batch(id: &str) -> Batch {
    Batch {
        messages: vec![NewInbound {
            message_id: id.into(),
            lane: LaneKey {
                phone_number_id: "PNID".into(),
                user: "u1".into(),
            },
            display_phone_number: "15550000000".into(),
            contact_name: None,
            kind: "text".into(),
            timestamp: 1_700_000_000,
            raw: format!(r#"{{"id":"{id}","type":"text","text":{{"body":"hi"}}}}"#),
            json: None,
            state: InboundState::Pending,
            note: None,
        }],
        ..Batch::default()
    }
}

#[tokio::test]
async fn a_webhook_refused_while_postgresql_is_unreachable_is_not_recorded() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    let store = db.open_store().await;
    store
        .writable()
        .await
        .expect("ready while PostgreSQL answers");
    // PostgreSQL goes away for this database: open connections are cut, new ones refused.
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    db.execute_as_admin(&format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = '{name}' AND pid <> pg_backend_pid();"
    ))
    .await;

    let refused = store.record(batch("m-lost")).await;
    assert!(
        matches!(refused, Err(StoreError::Unreachable { .. })),
        "the webhook's 503: {refused:?}"
    );
    assert!(store.writable().await.is_err(), "/readyz says not ready");

    db.execute_as_admin(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await;
    assert_eq!(
        db.query_text("SELECT COUNT(*) FROM inbound").await,
        "0",
        "nothing was recorded for the refused webhook"
    );
    // Meta redelivers: now it is recorded, once.
    let outcome = store.record(batch("m-lost")).await.unwrap();
    assert_eq!(outcome.new_pending_messages, 1);
    store.writable().await.expect("ready again");
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_naming_the_database_but_not_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // closed once the listener is dropped
    let url = format!("postgres://app:pw-do-not-show@127.0.0.1:{port}/wagate?sslmode=disable")
        .parse()
        .unwrap();
    let started = std::time::Instant::now();
    let error = Store::open_postgres(&url).await.err().expect("refused");
    let shown = error.to_string();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        shown.contains(&format!("127.0.0.1:{port}/wagate")),
        "{shown}"
    );
    assert!(!shown.contains("pw-do-not-show"), "{shown}");
}

#[tokio::test]
async fn sslmode_require_refuses_a_server_without_tls_and_prefer_falls_back_to_plain() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    // The test cluster has no TLS, as many development servers.
    let with = |mode: &str| -> super::DatabaseUrl {
        format!("{}?sslmode={mode}", db.url).parse().unwrap()
    };
    let refused = Store::open_postgres(&with("require")).await.err();
    assert!(
        matches!(refused, Some(StoreError::Unreachable { .. })),
        "require never talks in the clear: {refused:?}"
    );
    Store::open_postgres(&with("prefer"))
        .await
        .expect("prefer talks in the clear to a server without TLS");
}

#[tokio::test]
async fn an_unreadable_sslrootcert_is_named_in_the_error() {
    let url = "postgres://app@127.0.0.1:1/db?sslmode=verify-full&sslrootcert=/no/such/ca.pem"
        .parse()
        .unwrap();
    let error = Store::open_postgres(&url).await.err().expect("refused");
    assert!(error.to_string().contains("/no/such/ca.pem"), "{error}");
}

/// `plan_cache_mode` of a connection from `store`'s pool.
async fn plan_cache_mode(store: &Store) -> String {
    let client = store.postgres().inner().pool.get().await.unwrap();
    client
        .query_one("SHOW plan_cache_mode", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn the_pool_plans_each_statement_once_unless_the_url_says_otherwise() {
    let Some(db) = TestDb::fresh().await else {
        return;
    };
    // Planned once from the first call, not five times per connection on a fresh server.
    assert_eq!(
        plan_cache_mode(&db.open_store().await).await,
        "force_generic_plan"
    );
    let joint = if db.url.contains('?') { '&' } else { '?' };
    let theirs: DatabaseUrl = format!("{}{joint}options=-c%20plan_cache_mode%3Dauto", db.url)
        .parse()
        .unwrap();
    let store = Store::open_postgres(&theirs)
        .await
        .expect("the store opens");
    assert_eq!(
        plan_cache_mode(&store).await,
        "auto",
        "the operator's options win"
    );
}
