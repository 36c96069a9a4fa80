//! Child processes for tests (real peers such as py-eureka-client or eureka-js-client): spawned with
//! piped stdio, read line by line with a bounded wait, and killed by PID when the guard is dropped.

use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};
use tokio::sync::mpsc;

/// How many stderr lines a [`Child`] keeps for failure messages.
const STDERR_TAIL: usize = 60;

/// A running child process. Dropping it kills the process by its PID (SIGKILL) if it still runs,
/// so a failing test never leaves a peer behind.
pub struct Child {
    name: String,
    pid: u32,
    child: tokio::process::Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    seen: Vec<String>,
}

impl Child {
    /// Spawns `cmd` with stdin, stdout and stderr piped. `name` labels failure messages.
    pub fn spawn(name: &str, mut cmd: Command) -> anyhow::Result<Self> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("spawning {name}"))?;
        let pid = child.id().context("child has no pid right after spawn")?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let sink = Arc::clone(&tail);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(mut tail) = sink.lock() {
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            }
        });
        Ok(Self {
            name: name.to_owned(),
            pid,
            stdin: child.stdin.take(),
            child,
            lines,
            stderr: tail,
            seen: Vec::new(),
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Writes one line to the child's stdin.
    pub async fn send(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        stdin.write_all(line.as_bytes()).await?;
        stdin.write_all(b"\n").await?;
        stdin.flush().await?;
        Ok(())
    }

    /// The next stdout line, waiting at most `within`.
    pub async fn next_line(&mut self, within: Duration) -> anyhow::Result<String> {
        match tokio::time::timeout(within, self.lines.recv()).await {
            Ok(Some(line)) => {
                self.seen.push(line.clone());
                Ok(line)
            }
            Ok(None) => Err(anyhow!(
                "{} closed stdout (exited: {:?})\n{}",
                self.name,
                self.child.try_wait().ok().flatten(),
                self.diagnostics()
            )),
            Err(_) => Err(anyhow!(
                "{} printed nothing for {within:?}\n{}",
                self.name,
                self.diagnostics()
            )),
        }
    }

    /// Reads stdout lines as JSON (non-JSON lines are kept in the history and skipped) until one
    /// satisfies `pred`, waiting at most `within` in total.
    pub async fn wait_json(
        &mut self,
        what: &str,
        within: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                bail!(
                    "{}: no line matching {what} within {within:?}\n{}",
                    self.name,
                    self.diagnostics()
                );
            }
            let line = self
                .next_line(left)
                .await
                .with_context(|| format!("waiting for {what}"))?;
            if let Ok(value) = serde_json::from_str::<Value>(&line)
                && pred(&value)
            {
                return Ok(value);
            }
        }
    }

    /// Every stdout line read so far, parsed as JSON where possible.
    pub fn history(&self) -> Vec<Value> {
        self.seen
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits at most `within` for the child to exit.
    pub async fn wait(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        self.stdin = None;
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => Err(anyhow!(
                "{} did not exit within {within:?}\n{}",
                self.name,
                self.diagnostics()
            )),
        }
    }

    /// Kills the child by its PID (SIGKILL, as a crashing process or an OOM kill ends) and waits
    /// at most `within` for it to be gone.
    pub async fn kill(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        self.child
            .start_kill()
            .with_context(|| format!("killing {} (pid {})", self.name, self.pid))?;
        self.wait(within).await
    }

    /// The last stdout and stderr lines, for failure messages.
    pub fn diagnostics(&self) -> String {
        let out: Vec<&str> = self
            .seen
            .iter()
            .rev()
            .take(40)
            .rev()
            .map(String::as_str)
            .collect();
        let err: Vec<String> = self
            .stderr
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default();
        format!(
            "--- {} (pid {}) stdout, last lines:\n{}\n--- stderr, last lines:\n{}",
            self.name,
            self.pid,
            out.join("\n"),
            err.join("\n")
        )
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // `start_kill` sends SIGKILL to this child's PID only; tokio reaps it afterwards.
            let _ = self.child.start_kill();
        }
    }
}
