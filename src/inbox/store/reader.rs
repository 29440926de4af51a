//! The store's read connection: loads that must not wait for the writer's next commit (a
//! turn's memory, the operator reports). WAL lets it read beside the writer, seeing the last
//! committed state. Queries run on the blocking pool, never on the async runtime.

use super::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
pub(super) struct Reader {
    conn: Arc<Mutex<Connection>>,
}

impl Reader {
    /// A read-only connection to the database the writer created.
    pub(super) fn open(path: &Path) -> Result<Reader, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(Reader {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Run `op` now, on this thread: at open, before anything else uses the connection.
    pub(super) fn read_now<T>(
        &self,
        op: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        op(&conn).map_err(StoreError::from)
    }

    /// Run `op` on the read connection in a blocking thread.
    pub(super) async fn read<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic inside a query cannot leave the connection half-used: still safe.
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            op(&conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
        .map_err(StoreError::from)
    }
}
