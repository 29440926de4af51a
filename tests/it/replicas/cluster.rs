//! A PostgreSQL cluster of the test's own, for a test that stops and starts the server (never
//! the shared cluster of `WAGATE_TEST_POSTGRES_URL`): Debian's binaries from
//! `WAGATE_TEST_POSTGRES_BIN`, run as the `postgres` user (the server refuses to run as root),
//! on a port of its own with its data under /tmp, stopped and removed on drop.

use crate::support::external::component;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    pub port: u16,
}

impl Cluster {
    /// Creates and starts a cluster; `None` (after saying how to run the test) without
    /// `WAGATE_TEST_POSTGRES_BIN`.
    pub fn start() -> Option<Cluster> {
        let bin = PathBuf::from(component(
            "WAGATE_TEST_POSTGRES_BIN",
            "PostgreSQL's server binaries (initdb, pg_ctl)",
        )?);
        let port = super::free_port();
        let data = PathBuf::from(format!(
            "/tmp/wagate-it-pg-{port}-{:08x}",
            rand::random::<u32>()
        ));
        let _ = std::fs::remove_dir_all(&data);
        run("install", |c| {
            c.args(["-d", "-o", "postgres", "-g", "postgres", "-m", "0700"])
                .arg(&data)
        });
        let cluster = Cluster { bin, data, port };
        let initdb = cluster.bin.join("initdb");
        run("initdb", |c| {
            c.arg(&initdb).arg("-D").arg(&cluster.data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ])
        });
        cluster.pg_ctl_start();
        Some(cluster)
    }

    /// An administrator's URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server now (`fast`: open connections are cut, as when PostgreSQL goes away).
    pub fn stop(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        run("pg_ctl stop", |c| {
            c.arg(&pg_ctl)
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "fast", "-w", "stop"])
        });
    }

    /// Starts it again, on the same port and data.
    pub fn pg_ctl_start(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let log = self.data.join("server.log");
        run("pg_ctl start", |c| {
            c.arg(&pg_ctl)
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&log)
                .arg("-w")
                .arg("-o")
                .arg(format!(
                    "-h 127.0.0.1 -p {} -k {} -c max_connections=200",
                    self.port,
                    self.data.display()
                ))
                .arg("start")
        });
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let _ = runuser(|c| {
            c.arg(&pg_ctl)
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"])
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// `runuser -u postgres -- …` (or the plain command for `install`, which runs as root).
fn runuser(args: impl FnOnce(&mut Command) -> &mut Command) -> Command {
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--"]);
    args(&mut command);
    command
}

fn run(what: &str, args: impl FnOnce(&mut Command) -> &mut Command) {
    let output = if what == "install" {
        let mut command = Command::new("install");
        args(&mut command);
        command.output()
    } else {
        runuser(args).output()
    }
    .unwrap_or_else(|e| panic!("cannot run {what}: {e} (root and `runuser` are needed)"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
