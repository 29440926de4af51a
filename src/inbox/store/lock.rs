//! One `serve` per data directory.
//!
//! Two servers on one database would each resume the other's running turns and answer the same
//! messages twice. So `serve` takes an exclusive `flock(2)` on `<data>/wagate.lock` for as long
//! as it runs, and writes its process id into the file. A second `serve` on the same directory
//! fails at once with an error naming the directory and that process. The kernel drops the lock
//! when the process ends, however it ends (kill -9 included): a leftover file is never stale.
//!
//! Operator commands do not take it: `inbox` and `history` only read, and `retry` is one short
//! write transaction that SQLite orders with the server's (the server picks the re-queued turn
//! up at its next inbox scan). They are meant to run beside the server.

use super::files::{create_dir, tighten, FILE_MODE};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// File name of the lock inside `--data`.
pub const LOCK_FILE: &str = "wagate.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the data directory {} is in use by another wagate serve ({holder}); only one \
         serve may use a data directory at a time: stop that one, or give this one another --data",
        dir.display()
    )]
    Held { dir: PathBuf, holder: String },
    #[error("cannot lock the data directory {} ({}): {source}", dir.display(), file.display())]
    Io {
        dir: PathBuf,
        file: PathBuf,
        source: std::io::Error,
    },
}

/// Held while the server runs; dropping it (or the process ending) releases the directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Lock `data_dir` (created `0700` if missing) for this process, or say who holds it.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            dir: data_dir.to_path_buf(),
            file: path.clone(),
            source,
        };
        create_dir(data_dir).map_err(io)?;
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
        let mut file = options.open(&path).map_err(io)?;
        tighten(&path, FILE_MODE).map_err(io)?;
        match try_lock(&file) {
            Ok(true) => {}
            Ok(false) => {
                return Err(LockError::Held {
                    dir: data_dir.to_path_buf(),
                    holder: holder(&mut file),
                })
            }
            Err(e) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DataDirLock { _file: file })
    }
}

/// What the lock file says about its holder: `pid 1234`.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    match text.trim().parse::<u32>() {
        Ok(pid) => format!("pid {pid}"),
        Err(_) => "a process that has not written its id yet".to_owned(),
    }
}

/// `Ok(false)` when another open file description holds the lock.
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor this function borrows; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}
#[cfg(not(unix))]
fn try_lock(_: &File) -> std::io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_naming_the_directory_and_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again once the holder is gone");
    }
}
