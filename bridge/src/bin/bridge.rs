//! `bridge`: runs the Eureka-compatible registry, the admin listener and the configured
//! transcoding lanes until SIGTERM/SIGINT.

use anyhow::Context as _;
use bridge::config::Config;
use clap::{Parser, ValueEnum};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// jemalloc instead of the C library's malloc (as `migrate`, ADR 0013): under load, glibc's
/// malloc spent about 6 % of the bridge's CPU per request, much of it consolidating and
/// unlinking freed chunks.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit code for a bad config (`EX_USAGE` from sysexits.h; the project's convention).
const EXIT_BAD_CONFIG: u8 = 64;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Mesh ingress for legacy traffic: a Eureka-compatible registry for unmodified legacy clients.
#[derive(Debug, Parser)]
#[command(name = "bridge", version)]
struct Args {
    /// YAML config file (else `$BRIDGE_CONFIG`, else the embedded defaults). `BRIDGE_*`
    /// variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log line format; the level comes from RUST_LOG (default `info`).
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Where legacy registrations live: `memory` (default, per process) or `kubernetes`
    /// (Istio WorkloadEntries shared by every replica; docs/bridge.md). Overrides `store.kind`.
    #[arg(long)]
    store: Option<String>,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: tests and log shippers read these lines.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn load_config(path: Option<&PathBuf>, store: Option<&str>) -> anyhow::Result<Config> {
    let mut config = match path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Config::from_yaml_str(&text).with_context(|| format!("in {}", p.display()))?
        }
        None => Config::default(),
    };
    config.apply_env(std::env::vars())?;
    if let Some(kind) = store {
        config.store.kind = kind
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--store: {e}"))?;
    }
    config.validate()?;
    Ok(config)
}

/// Installs the SIGTERM/SIGINT handlers now and returns the wait for either: installed before
/// the listeners announce themselves, a SIGTERM right after the `listening` lines is a graceful
/// stop, not the default action (death by signal).
fn signals() -> anyhow::Result<impl std::future::Future<Output = &'static str>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        })
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let stop = signals()?;
    let running = bridge::run::start(config).await?;
    let signal = stop.await;
    tracing::info!(signal, "shutting down");
    running.shutdown().await?;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let log_format =
        args.log_format
            .unwrap_or_else(|| match std::env::var("BRIDGE_LOG_FORMAT").as_deref() {
                Ok("json") => LogFormat::Json,
                _ => LogFormat::Text,
            });
    init_logging(log_format);
    let config_path = args
        .config
        .or_else(|| std::env::var_os("BRIDGE_CONFIG").map(PathBuf::from));
    let config = match load_config(config_path.as_ref(), args.store.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bridge: bad config: {e:#}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let runtime = match config.runtime.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bridge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("bridge: {e:#}");
            // Lanes (protos, routes) and discovery (mapping file, kubeconfig) are built from the
            // config before any port is bound: a failure there is a bad config too.
            let bad_config = e.downcast_ref::<bridge::Error>().is_some_and(|e| {
                matches!(
                    e,
                    bridge::Error::Lane { .. } | bridge::Error::Discovery { .. }
                )
            });
            if bad_config {
                ExitCode::from(EXIT_BAD_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
