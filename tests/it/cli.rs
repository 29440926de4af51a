//! The binary as a new user meets it: what its errors and logs look like on a pipe, and where
//! `simulate` posts.

use crate::support::external;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn wagate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wagate"));
    command
        .args(args)
        .env_remove("WAGATE_LISTEN")
        .env_remove("WAGATE_LOG_FORMAT")
        .env_remove("NO_COLOR")
        .env_remove("WHATSAPP_APP_SECRET");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run wagate")
}

fn seed_config() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .display()
        .to_string()
}

/// `wagate serve` on an address another socket holds (stderr piped, `RUST_BACKTRACE=1`).
fn serve_on_a_busy_port() -> (Output, String) {
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let listen = busy.local_addr().expect("addr").to_string();
    let data = tempfile::tempdir().expect("temp dir");
    let output = wagate(
        &[
            "serve",
            "--config",
            &seed_config(),
            "--data",
            &data.path().display().to_string(),
            "--listen",
            &listen,
        ],
        &[("RUST_BACKTRACE", "1"), ("RUST_LOG", "info")],
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

#[test]
fn a_port_in_use_fails_with_a_message_that_mentions_listen_and_no_stack_trace() {
    let (output, stderr) = serve_on_a_busy_port();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains("--listen"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    assert!(!stderr.contains("Caused by"), "{stderr}");
}

#[test]
fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let (_, stderr) = serve_on_a_busy_port();
    // The seed config without its variables logs warnings (dry run, no app secret).
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

#[test]
fn simulate_posts_to_the_address_in_wagate_listen() {
    let server = TcpListener::bind("127.0.0.1:0").expect("bind");
    let listen = format!("0.0.0.0:{}", server.local_addr().expect("addr").port());
    let accept = std::thread::spawn(move || {
        let (mut stream, _) = server.accept().expect("accept");
        let mut request = vec![0u8; 64 * 1024];
        let n = stream.read(&mut request).expect("read");
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .expect("write");
        String::from_utf8_lossy(&request[..n]).into_owned()
    });
    let output = wagate(&["simulate", "hello"], &[("WAGATE_LISTEN", &listen)]);
    let request = accept.join().expect("server thread");
    assert!(
        request.starts_with("POST /v1/channels/whatsapp/webhook HTTP/1.1"),
        "{request}"
    );
    assert!(output.status.success(), "{output:?}");
}

/// Runs `openssl` with these arguments in `dir`; panics with its stderr when it fails.
fn openssl(openssl: &str, dir: &Path, args: &[&str]) {
    let output = Command::new(openssl)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_server_certified_by_a_private_ca_in_the_trust_store_is_trusted() {
    let Some(bin) = external::component("WAGATE_TEST_OPENSSL", "the openssl command") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    // A private CA, and a certificate for localhost signed by it.
    let subject = ["-subj", "/CN=wagate test CA", "-days", "1"];
    let ca = [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
    ];
    openssl(
        &bin,
        d,
        &[&ca[..], &["-out", "ca.pem"], &subject[..]].concat(),
    );
    let csr = [
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
    ];
    openssl(
        &bin,
        d,
        &[&csr[..], &["-out", "server.csr", "-subj", "/CN=localhost"]].concat(),
    );
    std::fs::write(
        d.join("san.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write extensions");
    openssl(
        &bin,
        d,
        &[
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
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut server = Command::new(&bin)
        .args([
            "s_server",
            "-quiet",
            "-www",
            "-cert",
            "server.pem",
            "-key",
            "server.key",
        ])
        .args(["-accept", &port.to_string()])
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start openssl s_server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("https://localhost:{port}/");
    let ca_file = d.join("ca.pem").display().to_string();
    let empty_dir = d.join("no-certs");
    std::fs::create_dir(&empty_dir).expect("empty dir");
    let empty_dir = empty_dir.display().to_string();

    let untrusted = wagate(
        &["healthcheck", "--url", &url],
        &[("SSL_CERT_DIR", &empty_dir)],
    );
    let trusted = wagate(
        &["healthcheck", "--url", &url],
        &[("SSL_CERT_FILE", &ca_file), ("SSL_CERT_DIR", &empty_dir)],
    );
    let _ = server.kill();
    let _ = server.wait();

    assert!(!untrusted.status.success(), "{untrusted:?}");
    assert!(
        trusted.status.success(),
        "with the CA in SSL_CERT_FILE: {}",
        String::from_utf8_lossy(&trusted.stderr)
    );
}
