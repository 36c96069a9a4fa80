//! A real Docker engine for the live-Swarm tests, started the way `../shared/reference/tooling.md`
//! §3 describes: `dockerd --iptables=false --ip-forward=false --bridge=none` on a private socket,
//! with its data root, exec root and pidfile in a fresh temporary folder, so it never touches the
//! machine's own Docker (if any) and changes no firewall rule. Dropping [`Dockerd`] removes the
//! stacks it deployed, leaves the Swarm, stops dockerd by its PID (bounded wait), unmounts what it
//! left under the exec root and deletes `docker_gwbridge` if this engine created it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long one `docker` command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long dockerd may take to answer after it starts, and to exit after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the live-Swarm tests cannot run here, or `None` when they can (root, `dockerd` and a
/// static busybox present). Under `tests/run` the caller must fail instead of skipping.
pub fn unavailable() -> Option<String> {
    if !is_root() {
        return Some("dockerd needs root".into());
    }
    if crate::tool("dockerd").is_none() {
        return Some("dockerd is not installed (apt-get install docker.io)".into());
    }
    if crate::tool("docker").is_none() {
        return Some("the docker CLI is not installed".into());
    }
    if busybox().is_none() {
        return Some("busybox is not installed (apt-get install busybox-static)".into());
    }
    None
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// busybox from `busybox-static` (statically linked, so the one-file image could run it).
fn busybox() -> Option<PathBuf> {
    crate::tool("busybox")
}

/// Runs `cmd` with its output in files (no pipe can fill up), waiting at most `timeout`; kills it
/// by its PID when the time is up. Returns (exit code, stdout, stderr); the code is `None` when a
/// signal ended the command.
pub fn run_status(
    mut cmd: Command,
    what: &str,
    timeout: Duration,
) -> anyhow::Result<(Option<i32>, String, String)> {
    let out = tempfile::tempfile().context("stdout file")?;
    let err = tempfile::tempfile().context("stderr file")?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?)
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |mut f: std::fs::File| -> anyhow::Result<String> {
        use std::io::{Read, Seek};
        f.rewind()?;
        let mut s = String::new();
        f.read_to_string(&mut s)?;
        Ok(s)
    };
    Ok((status.code(), read(out)?, read(err)?))
}

/// Like [`run_status`], but a non-zero exit is an error (with stderr); returns stdout.
pub fn run(cmd: Command, what: &str, timeout: Duration) -> anyhow::Result<String> {
    let (code, stdout, stderr) = run_status(cmd, what, timeout)?;
    if code != Some(0) {
        bail!("{what} failed:\n{stderr}\n{stdout}");
    }
    Ok(stdout)
}

/// A running dockerd on a private socket. See the module documentation for what `Drop` undoes.
pub struct Dockerd {
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
    pid: u32,
    swarm: bool,
    stacks: Vec<String>,
    gwbridge_before: bool,
}

impl Dockerd {
    /// Starts dockerd and waits (bounded) until it answers.
    pub fn start() -> anyhow::Result<Self> {
        // Short path: containerd's socket path must stay under ~108 characters.
        let dir = tempfile::Builder::new()
            .prefix("mmd")
            .tempdir_in("/tmp")
            .context("temp dir")?;
        let gwbridge_before = link_exists("docker_gwbridge");
        let d = dir.path();
        let log = std::fs::File::create(d.join("dockerd.log"))?;
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("x"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", d.join("sock").display()))
            .args(["--iptables=false", "--ip-forward=false", "--bridge=none"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting dockerd")?;
        let pid = child.id();
        let mut me = Self {
            dir,
            child: Some(child),
            pid,
            swarm: false,
            stacks: Vec::new(),
            gwbridge_before,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(c) = me.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                bail!("dockerd exited early ({status}):\n{}", me.log_tail());
            }
            let (code, _, _) = run_status(
                me.docker(&["version", "--format", "{{.Server.APIVersion}}"]),
                "docker version",
                Duration::from_secs(5),
            )?;
            if code == Some(0) {
                return Ok(me);
            }
            if Instant::now() >= deadline {
                bail!(
                    "dockerd did not answer within {START_TIMEOUT:?}:\n{}",
                    me.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The folder holding the engine's state (and free for the test's own files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `DOCKER_HOST` of this engine.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("sock").display())
    }

    /// The PID of dockerd.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A `docker` command aimed at this engine.
    pub fn docker(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        cmd.args(args).env("DOCKER_HOST", self.host());
        cmd
    }

    /// Runs `docker ARGS` (bounded) and returns its stdout.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        run(
            self.docker(args),
            &format!("docker {}", args.join(" ")),
            COMMAND_TIMEOUT,
        )
    }

    /// `docker swarm init --advertise-addr 127.0.0.1`.
    pub fn swarm_init(&mut self) -> anyhow::Result<()> {
        self.swarm = true;
        self.run(&["swarm", "init", "--advertise-addr", "127.0.0.1"])?;
        Ok(())
    }

    /// Imports a one-file image holding busybox (and a few applet links) as `tag`.
    pub fn import_busybox(&self, tag: &str) -> anyhow::Result<()> {
        let busybox = busybox().context("busybox")?;
        let rootfs = self.dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin"))?;
        std::fs::copy(&busybox, rootfs.join("bin/busybox"))?;
        for applet in ["sh", "echo", "sleep", "wget", "httpd", "true"] {
            let link = rootfs.join("bin").join(applet);
            if !link.exists() {
                std::os::unix::fs::symlink("busybox", link)?;
            }
        }
        let tar = self.dir.path().join("rootfs.tar");
        let mut cmd = Command::new("tar");
        cmd.arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".");
        run(cmd, "tar of the busybox rootfs", COMMAND_TIMEOUT)?;
        let tar = tar.to_string_lossy().into_owned();
        self.run(&["import", &tar, tag])?;
        Ok(())
    }

    /// `docker stack deploy -c FILE NAME`; the stack is removed again on drop.
    pub fn stack_deploy(&mut self, file: &Path, name: &str) -> anyhow::Result<()> {
        self.stacks.push(name.to_string());
        let file = file.to_string_lossy().into_owned();
        self.run(&[
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            &file,
            name,
        ])?;
        Ok(())
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn stop(&mut self) {
        let quick = Duration::from_secs(30);
        for stack in std::mem::take(&mut self.stacks) {
            let _ = run(
                self.docker(&["stack", "rm", &stack]),
                "docker stack rm",
                quick,
            );
        }
        if self.swarm {
            let _ = run(
                self.docker(&["swarm", "leave", "--force"]),
                "docker swarm leave",
                quick,
            );
        }
        if let Some(mut child) = self.child.take() {
            // SIGTERM by PID, so dockerd stops its containerd and cleans up; SIGKILL after.
            let mut kill = Command::new("kill");
            kill.args(["-TERM", &self.pid.to_string()]);
            let _ = run(kill, "kill -TERM dockerd", Duration::from_secs(5));
            let deadline = Instant::now() + STOP_TIMEOUT;
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        // Swarm leaves an nsfs mount per network namespace under the exec root; anything still
        // mounted under the folder would keep it from being deleted.
        for mount in mounts_under(self.dir.path()).into_iter().rev() {
            let mut umount = Command::new("umount");
            umount.arg(&mount);
            if run(umount, "umount", Duration::from_secs(10)).is_err() {
                let mut lazy = Command::new("umount");
                lazy.arg("-l").arg(&mount);
                let _ = run(lazy, "umount -l", Duration::from_secs(10));
            }
        }
        if !self.gwbridge_before && link_exists("docker_gwbridge") {
            let mut ip = Command::new("ip");
            ip.args(["link", "del", "docker_gwbridge"]);
            let _ = run(ip, "ip link del docker_gwbridge", Duration::from_secs(10));
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Mount points under `dir`, in the order `/proc/self/mounts` lists them.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        // /proc/self/mounts escapes spaces as \040; the temp folder has none.
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect()
}
