//! The binary as a new user meets it: what its errors and logs look like on a pipe, and where
//! `simulate` posts.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

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
