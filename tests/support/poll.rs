//! Bounded polling instead of fixed sleeps: check a condition every 50 ms until it holds or the
//! bound runs out, and report the last observation when it does not.

use std::future::Future;
use std::time::Duration;

use anyhow::bail;

/// The poll step.
pub const STEP: Duration = Duration::from_millis(50);

/// The usual bound for something a peer should do within a few of its 1 s cycles.
pub const BOUND: Duration = Duration::from_secs(20);

/// Calls `check` every [`STEP`] until it returns `Ok(Some(_))`, at most for `within`. `Ok(None)` and
/// errors both mean "not yet"; the last error (or "condition false") ends up in the failure.
pub async fn until<T, F, Fut>(what: &str, within: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let last = match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => String::from("condition false"),
            Err(e) => format!("{e:#}"),
        };
        if tokio::time::Instant::now() >= deadline {
            bail!("{what}: not reached within {within:?}; last observation: {last}");
        }
        tokio::time::sleep(STEP).await;
    }
}
