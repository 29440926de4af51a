//! The database on disk: the data directory and file modes, the file's identity, and whether a
//! write would succeed.
//!
//! - **Modes.** The database holds every customer's messages, so the data directory is `0700`
//!   and the database file `0600` (SQLite gives its `-wal` and `-shm` files the database file's
//!   mode). Looser modes found at start are tightened, with a log line saying so.
//! - **Identity.** The writer keeps its connection for the life of the process. If the file is
//!   deleted or replaced under it (a restore copied over it, a cleanup script), SQLite would go
//!   on committing into the old, unlinked inode, and everything acknowledged from then on would
//!   be gone at the next restart. So every batch first checks that the path still names the
//!   file that was opened; if not, nothing is committed (webhooks get 503, Meta redelivers) and
//!   `/readyz` says why.
//! - **Writable.** `FileGuard::writable` and [`probe_write`] tell `/readyz` whether a write
//!   would succeed: a real one-row write commits, the file is the one opened, the connection is
//!   not read-only, and neither the file nor the directory has lost its write permission (checked on the mode bits as well as with `access(2)`, so taking
//!   write permission away means "not ready" even for root, who could still write).

use super::StoreError;
use std::path::{Path, PathBuf};

/// Mode of the data directory.
const DIR_MODE: u32 = 0o700;
/// Mode of the database file (and so of its `-wal` and `-shm`) and of the lock file.
pub(crate) const FILE_MODE: u32 = 0o600;

/// Create `data_dir` (`0700`) and the empty database file (`0600`) when missing; tighten the
/// modes of an existing directory and database files. Returns the database path.
pub(super) fn prepare(data_dir: &Path, file_name: &str) -> Result<PathBuf, StoreError> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::CreateDir { path, source }
    };
    create_dir(data_dir).map_err(failed(data_dir))?;
    tighten_or_warn(data_dir, DIR_MODE);
    let path = data_dir.join(file_name);
    create_file(&path).map_err(failed(&path))?;
    for suffix in ["", "-wal", "-shm"] {
        let file = data_dir.join(format!("{file_name}{suffix}"));
        if file.exists() {
            tighten_or_warn(&file, FILE_MODE);
        }
    }
    Ok(path)
}

#[cfg(unix)]
pub(super) fn create_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}
#[cfg(not(unix))]
pub(super) fn create_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// An empty file made `0600` before SQLite first opens it, so no moment exists when it is
/// readable by others.
fn create_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    match options.open(path) {
        Ok(_) => Ok(()),
        // An existing file is SQLite's to open (and to report on, read-only or not).
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// [`tighten`], with a warning instead of a failure: a directory owned by another user (a
/// mounted volume, say) cannot be changed by us, and refusing to start over it would help no one.
fn tighten_or_warn(path: &Path, wanted: u32) {
    if let Err(e) = tighten(path, wanted) {
        tracing::warn!(
            path = %path.display(),
            error = %e,
            wanted = format!("{wanted:04o}"),
            "cannot tighten the permissions of the database's files; other local users may be \
             able to read customers' messages (chown it to the user running wagate, or chmod it)"
        );
    }
}

/// Remove every permission bit beyond `wanted` (never adds one); logs when it changed a mode.
#[cfg(unix)]
pub(crate) fn tighten(path: &Path, wanted: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    let tightened = mode & wanted;
    if tightened != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(tightened))?;
        tracing::info!(
            path = %path.display(),
            from = format!("{mode:04o}"),
            to = format!("{tightened:04o}"),
            "tightened the permissions: the database holds customers' messages"
        );
    }
    Ok(())
}
#[cfg(not(unix))]
pub(crate) fn tighten(_: &Path, _: u32) -> std::io::Result<()> {
    Ok(())
}

/// A real write in the writer's transaction, committed with it: one row of its own table,
/// overwritten each time. A full disk, an I/O error or a read-only file or mount fail it (or
/// the commit) the way they would fail a webhook's write.
pub(super) fn probe_write(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "CREATE TABLE IF NOT EXISTS readiness_probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)",
    )?
    .execute([])?;
    conn.prepare_cached(
        "INSERT INTO readiness_probe (id, at) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET at = excluded.at",
    )?
    .execute([chrono::Utc::now().timestamp_millis()])?;
    Ok(())
}

/// The database file as it was when the writer opened it.
#[derive(Debug)]
pub(super) struct FileGuard {
    path: PathBuf,
    id: Option<(u64, u64)>,
}

impl FileGuard {
    pub(super) fn new(path: &Path) -> Self {
        FileGuard {
            path: path.to_path_buf(),
            id: identity(path).ok(),
        }
    }

    /// `Err(reason)` when the path no longer names the file the writer has open.
    pub(super) fn check(&self) -> Result<(), String> {
        let Some(opened) = self.id else {
            return Ok(()); // no identity on this platform
        };
        match identity(&self.path) {
            Ok(now) if now == opened => Ok(()),
            Ok(_) => Err(format!(
                "the database file {} was replaced after wagate opened it; nothing is \
                 written to the new file (restart wagate to use it)",
                self.path.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "the database file {} was deleted while wagate runs; nothing more is \
                 acknowledged (restore it, or restart wagate to start a new one)",
                self.path.display()
            )),
            Err(e) => Err(format!(
                "cannot look at the database file {}: {e}",
                self.path.display()
            )),
        }
    }

    /// `Err(reason)` when a write to the database would not succeed (see the module docs).
    pub(super) fn writable(&self, connection_read_only: bool) -> Result<(), String> {
        self.check()?;
        if connection_read_only {
            return Err(format!(
                "the database {} was opened read-only (check its permissions and the \
                 directory's, then restart)",
                self.path.display()
            ));
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        permits_writing(&self.path, 0o200).map_err(|why| {
            format!(
                "the database file {} is not writable: {why}",
                self.path.display()
            )
        })?;
        permits_writing(dir, 0o300).map_err(|why| {
            format!(
                "the data directory {} is not writable: {why}",
                dir.display()
            )
        })
    }
}

#[cfg(unix)]
fn identity(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}
#[cfg(not(unix))]
fn identity(_: &Path) -> std::io::Result<(u64, u64)> {
    Err(std::io::Error::other("no file identity on this platform"))
}

/// The owner's `bits` are set on `path` and `access(2)` grants writing (a read-only mount, an
/// ACL).
#[cfg(unix)]
fn permits_writing(path: &Path, bits: u32) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    if mode & bits != bits {
        return Err(format!("its mode is {:04o}", mode & 0o7777));
    }
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::access(c_path.as_ptr(), libc::W_OK) } != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(())
}
#[cfg(not(unix))]
fn permits_writing(path: &Path, _: u32) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().readonly() => Err("it is read-only".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_data_directory_is_0700_and_the_database_file_0600() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        let db = prepare(&dir, "wagate.db").unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&db), 0o600);
    }

    #[test]
    fn loose_modes_found_at_start_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("wagate.db");
        let wal = dir.path().join("wagate.db-wal");
        for file in [&db, &wal] {
            std::fs::write(file, b"").unwrap();
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare(dir.path(), "wagate.db").unwrap();
        assert_eq!(mode(dir.path()), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&wal), 0o600);
    }

    #[test]
    fn a_deleted_or_replaced_file_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let db = prepare(dir.path(), "wagate.db").unwrap();
        let guard = FileGuard::new(&db);
        // Held open, as SQLite holds it: the inode stays in use, so a new file gets another.
        let _open = std::fs::File::open(&db).unwrap();
        assert_eq!(guard.check(), Ok(()));
        std::fs::remove_file(&db).unwrap();
        assert!(guard.check().unwrap_err().contains("deleted"));
        std::fs::write(&db, b"").unwrap();
        assert!(guard.check().unwrap_err().contains("replaced"));
    }

    #[tokio::test]
    async fn the_readiness_check_commits_a_real_write() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            super::super::Store::open(dir.path(), super::super::Durability::Normal).unwrap();
        store
            .writable()
            .await
            .expect("a fresh database is writable");
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        let at: i64 = conn
            .query_row("SELECT at FROM readiness_probe WHERE id = 1", [], |r| {
                r.get(0)
            })
            .expect("the probe row was committed");
        assert!(at > 0);
    }

    #[test]
    fn a_file_or_directory_without_write_permission_is_not_writable() {
        let dir = tempfile::tempdir().unwrap();
        let db = prepare(dir.path(), "wagate.db").unwrap();
        let guard = FileGuard::new(&db);
        assert_eq!(guard.writable(false), Ok(()));
        assert!(guard.writable(true).unwrap_err().contains("read-only"));
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(guard.writable(false).unwrap_err().contains("not writable"));
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o500)).unwrap();
        let err = guard.writable(false).unwrap_err();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(err.contains("data directory"), "{err}");
    }
}
