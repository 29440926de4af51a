//! The data directory: one `serve` at a time, private file modes, and `/readyz` telling whether
//! a write would succeed (a deleted, replaced or read-only database is noticed).

use crate::support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `wagate serve` on a free port; killed when dropped.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve_command(config: &Path, data: &Path, port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wagate"));
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--config")
        .arg(config)
        .arg("--data")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    command
}

fn wagate(args: &[&str], data: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wagate"))
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .expect("wagate runs")
}

#[tokio::test]
async fn a_second_serve_on_the_same_data_directory_exits_at_once_naming_the_directory_and_the_holder(
) {
    let config = ConfigDir::dry_run(|c| c);
    let data = tempfile::tempdir().unwrap();
    // Same port too, as a second start of the same service would ask for: the answer must
    // still be about the data directory.
    let port = free_port();
    let first = Serve(
        serve_command(config.path(), data.path(), port)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let mut listening = false;
    for _ in 0..400 {
        let health = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await;
        if health.is_ok() {
            listening = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        listening,
        "the first server is serving (and holds the lock)"
    );

    let started = Instant::now();
    let mut second = Serve(
        serve_command(config.path(), data.path(), port)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let status = loop {
        if let Some(status) = second.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the second serve is still running beside the first"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success(), "exit code non-zero");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains(&data.path().display().to_string()),
        "names the directory: {stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {}", first.0.id())),
        "names the process holding it: {stderr}"
    );

    // Operator commands keep working beside the running server.
    let inbox = wagate(&["inbox"], data.path());
    assert!(
        inbox.status.success(),
        "{}",
        String::from_utf8_lossy(&inbox.stderr)
    );
    let history = wagate(&["history", "15550001111"], data.path());
    let history_err = String::from_utf8_lossy(&history.stderr);
    assert_eq!(
        history.status.code(),
        Some(1),
        "nothing remembered: {history_err}"
    );
    assert!(!history_err.contains("in use"), "{history_err}");
    let retry = wagate(&["retry", "4242"], data.path());
    let retry_err = String::from_utf8_lossy(&retry.stderr);
    assert_eq!(retry.status.code(), Some(1), "no such turn: {retry_err}");
    assert!(!retry_err.contains("in use"), "{retry_err}");
}

#[tokio::test]
async fn the_data_directory_is_0700_and_the_database_files_0600_even_when_they_were_looser() {
    let config = ConfigDir::dry_run(|c| c);
    let root = tempfile::tempdir().unwrap();
    let fresh = root.path().join("fresh");
    let server = TestServer::start(config.load(), &fresh, None).await;
    server
        .post_signed(&text_body(&[("wamid.mode", "15551230001", "hi")]))
        .await;
    assert_eq!(mode(&fresh), 0o700);
    for file in ["wagate.db", "wagate.db-wal", "wagate.db-shm", "wagate.lock"] {
        assert_eq!(mode(&fresh.join(file)), 0o600, "{file}");
    }
    server.stop().await;

    // Made by an older version: world-readable. Tightened at the next start.
    chmod(&fresh, 0o755);
    for file in ["wagate.db", "wagate.db-wal", "wagate.db-shm"] {
        if fresh.join(file).exists() {
            chmod(&fresh.join(file), 0o644);
        }
    }
    let server = TestServer::start(config.load(), &fresh, None).await;
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("wagate.db")), 0o600);
    server.stop().await;
}

async fn readyz(server: &TestServer) -> (u16, String) {
    let response = server.get("/readyz").await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn a_deleted_database_file_makes_readyz_503_and_the_webhook_503_not_an_ack_into_the_void() {
    let config = ConfigDir::dry_run(|c| c);
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;
    assert_eq!(readyz(&server).await.0, 200);

    std::fs::remove_file(data.path().join("wagate.db")).unwrap();
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("deleted"), "{body}");
    let webhook = server
        .post_signed(&text_body(&[("wamid.void", "15551230001", "hi")]))
        .await;
    assert_eq!(
        webhook.status(),
        503,
        "not acknowledged: Meta must redeliver it once the database is back"
    );
}

#[tokio::test]
async fn a_replaced_database_file_makes_readyz_503_and_the_webhook_503() {
    let config = ConfigDir::dry_run(|c| c);
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;
    let db = data.path().join("wagate.db");
    std::fs::copy(&db, data.path().join("restored.db")).unwrap();
    std::fs::rename(data.path().join("restored.db"), &db).unwrap();

    let (status, body) = readyz(&server).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("replaced"), "{body}");
    let webhook = server
        .post_signed(&text_body(&[("wamid.replaced", "15551230001", "hi")]))
        .await;
    assert_eq!(webhook.status(), 503);
}

#[tokio::test]
async fn a_read_only_database_file_or_directory_makes_readyz_503_until_it_is_writable_again() {
    let config = ConfigDir::dry_run(|c| c);
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(config.load(), data.path(), None).await;
    let db = data.path().join("wagate.db");

    chmod(&db, 0o400);
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not writable"), "{body}");
    chmod(&db, 0o600);
    assert_eq!(readyz(&server).await.0, 200);

    chmod(data.path(), 0o500);
    let (status, body) = readyz(&server).await;
    chmod(data.path(), 0o700);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("data directory"), "{body}");
    assert_eq!(readyz(&server).await.0, 200);
}
