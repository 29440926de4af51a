//! A store operation on its way to the writer thread, and how its result gets back.

use super::StoreError;
use rusqlite::Connection;
use tokio::sync::oneshot;

/// One store operation queued for the writer.
pub(super) trait Job: Send {
    /// Run inside the batch transaction; `false` when the operation failed. May be called again
    /// (after a rollback of the batch), replacing the earlier result.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Tell the caller: its result if the batch committed, else why it did not.
    fn deliver(self: Box<Self>, batch_error: Option<&str>);
}

/// A closure job whose result goes back through a oneshot channel.
struct Call<F, T> {
    op: F,
    result: Option<rusqlite::Result<T>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> Job for Call<F, T>
where
    F: FnMut(&Connection) -> rusqlite::Result<T> + Send,
    T: Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let result = (self.op)(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn deliver(self: Box<Self>, batch_error: Option<&str>) {
        let result = match (batch_error, self.result) {
            (Some(e), _) => Err(StoreError::Commit(e.to_string())),
            (None, Some(result)) => result.map_err(StoreError::from),
            (None, None) => Err(StoreError::Commit("the operation did not run".into())),
        };
        // The caller may have gone away (request cancelled); nothing to do then.
        let _ = self.reply.send(result);
    }
}

/// Wrap a store operation into a job whose result reaches `reply` after the commit.
pub(super) fn job<T: Send + 'static>(
    op: impl FnMut(&Connection) -> rusqlite::Result<T> + Send + 'static,
    reply: oneshot::Sender<Result<T, StoreError>>,
) -> Box<dyn Job> {
    Box::new(Call {
        op,
        result: None,
        reply,
    })
}
