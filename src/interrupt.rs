//! Stopping a statement whose thread waits inside synchronous code.
//!
//! A statement runs as a future, and the server stops it (a CancelRequest,
//! `pg_cancel_backend`, statement_timeout) by dropping that future. Some of
//! its work cannot be dropped that way: DataFusion calls table functions
//! (`read_csv('https://…')`, `postgres_query`, `read_log`) and scalar
//! functions (a correlated subquery) synchronously, and they wait for their
//! I/O with `block_in_place`, inside one poll of the statement's future. Such
//! waits go through [`block_on`], which also ends, with 57014, when the
//! statement it runs for is canceled or out of time: the [`Interrupt`] the
//! server sets around each statement with [`Interrupt::scope`].
//!
//! ```text
//!  server:   Interrupt { deadline, cancel } ─scope─▶ statement future
//!  planning: table function ─▶ block_on(I/O) ─▶ I/O done | canceled | timed out
//! ```

use std::future::Future;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Error, ErrorKind};

tokio::task_local! {
    static CURRENT: Interrupt;
}

/// What ends the statement in progress early.
#[derive(Clone, Debug, Default)]
pub struct Interrupt {
    /// When statement_timeout runs out.
    deadline: Option<Instant>,
    /// The connection's cancel requests (the number of the statement each
    /// asked to cancel), and this statement's number.
    cancel: Option<(watch::Receiver<u64>, u64)>,
}

impl Interrupt {
    pub fn new(deadline: Option<Instant>, cancel: Option<(watch::Receiver<u64>, u64)>) -> Self {
        Interrupt { deadline, cancel }
    }

    /// Run `work` as the statement this interrupts: ended with 57014 when
    /// the statement is canceled or out of time, whether `work` waits in
    /// async code (dropped) or in synchronous code (through [`block_on`]).
    pub async fn run<T>(self, work: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        let ended = self.clone().ended();
        CURRENT
            .scope(self, async {
                tokio::select! {
                    r = work => r,
                    e = ended => Err(e),
                }
            })
            .await
    }

    /// Completes, with the error the statement ends with, when it is
    /// canceled or out of time; never otherwise.
    async fn ended(mut self) -> Error {
        let canceled = async {
            if let Some((requests, statement)) = &mut self.cancel {
                let statement = *statement;
                if requests.wait_for(|n| *n == statement).await.is_ok() {
                    return;
                }
            }
            std::future::pending::<()>().await
        };
        let timed_out = async {
            match self.deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = canceled => canceled_error(),
            () = timed_out => timeout_error(),
        }
    }
}

/// 57014 for a cancel request.
pub fn canceled_error() -> Error {
    Error::new(
        ErrorKind::QueryCanceled,
        "canceling statement due to user request",
    )
}

/// 57014 for statement_timeout.
pub fn timeout_error() -> Error {
    Error::new(
        ErrorKind::QueryCanceled,
        "canceling statement due to statement timeout",
    )
}

/// Wait for `work` from synchronous code running inside the runtime (a
/// table or scalar function), handing the worker's other tasks on; ends
/// early with 57014 when the statement in progress is canceled or out of
/// time.
pub fn block_on<T, E: From<Error>>(work: impl Future<Output = Result<T, E>>) -> Result<T, E> {
    let interrupt = CURRENT.try_with(Clone::clone).ok();
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(async move {
            match interrupt {
                Some(i) => tokio::select! {
                    r = work => r,
                    e = i.ended() => Err(e.into()),
                },
                None => work.await,
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn slow() -> Result<u8, Error> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(1)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_blocked_wait_ends_at_the_deadline_or_on_a_cancel() {
        // No interrupt: the work's own answer.
        assert_eq!(block_on(async { Ok::<_, Error>(7) }).unwrap(), 7);

        let deadline = Instant::now() + Duration::from_millis(50);
        let e = Interrupt::new(Some(deadline), None)
            .run(async { block_on(slow()) })
            .await
            .unwrap_err();
        assert_eq!(e.message, "canceling statement due to statement timeout");

        let (requests, rx) = watch::channel(0u64);
        let canceler = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            // A request for another statement is not for this one.
            requests.send_replace(4);
            tokio::time::sleep(Duration::from_millis(50)).await;
            requests.send_replace(5);
            requests
        });
        let e = Interrupt::new(None, Some((rx, 5)))
            .run(async { block_on(slow()) })
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::QueryCanceled);
        assert_eq!(e.message, "canceling statement due to user request");
        drop(canceler.await.unwrap());
    }
}
