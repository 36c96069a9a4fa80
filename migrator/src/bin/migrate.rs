//! `migrate`: converts Docker Swarm stack files into a Helm chart and a conversion ledger. It reads
//! the stack exactly as `docker stack deploy` would, writes the chart (or, with --dry-run, only
//! lists it) and prints the ledger.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, ValueEnum};
use migrator::diff;
use migrator::emit::{self, SecretMode};
use migrator::load::{self, Dialect};
use migrator::model::Stack;
use migrator::report::Ledger;
use migrator::swarm;

/// jemalloc instead of the C library's malloc: a quarter less CPU and less peak memory on large
/// stacks, where the program is thousands of small allocations freed by other threads (ADR 0013).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit code for usage errors (BSD `EX_USAGE`).
const EXIT_USAGE: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "migrate",
    version,
    about = "Reads Docker Swarm stack files the way `docker stack deploy` does (or a live Swarm with --from-swarm), writes a Helm chart (ConfigMaps, Secrets, PersistentVolumeClaims, NetworkPolicies; with --istio also Istio objects and the bridge mapping file, see docs/istio.md) and prints the conversion ledger: every key with its status (converted, approximated, dropped, needs-input), Kubernetes target and reason.",
    after_help = "Partial migration: --only vote,result --istio --legacy-endpoint redis=10.0.0.5:6379 converts two\nservices; the others stay on Swarm and are reached through ServiceEntries (docs/istio.md).\n\nExit codes:\n  0   the chart was written (or the report printed with --dry-run) and the ledger printed\n  1   the stack is wrong (the message names file, line, column and key), a file cannot be read,\n      the output folder is not empty (use --force), or --only/--except/--legacy-endpoint/--mapping\n      name what the stack does not allow; with --from-swarm also: the daemon is unreachable, is not a\n      Swarm manager, speaks too old an API, or its socket is not permitted\n  64  usage error (unknown option, missing file argument, bad --kube-version, an Istio option\n      without --istio)\n\nmigrate diff [OPTIONS] FILE... --against DIR|cluster compares the chart with a folder or a live\ncluster (exit 0 no differences, 2 differences, 1 error); see `migrate diff --help`.\n\nSecret values are never printed: --dry-run and the ledger show <redacted sha256:XXXXXXXX>.\nLogging: set RUST_LOG (e.g. RUST_LOG=debug); logs go to stderr."
)]
struct Cli {
    /// Stack file; repeat to merge several (later files override earlier ones).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Vec<PathBuf>,
    /// More stack files, merged after the -f files.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Which loader to imitate: swarm (`docker stack deploy`: no implicit .env, docker-cli v3.13
    /// schema) or compose (also reads .env next to the first file, compose-spec schema).
    #[arg(long, value_enum, default_value_t = DialectArg::Swarm)]
    dialect: DialectArg,
    /// File of KEY=VALUE lines for ${VAR} interpolation; repeatable, later files win, the process
    /// environment wins over all of them.
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// Output format: text (aligned table per service, then counts) or json (ledger and warnings);
    /// with --dry-run and `migrate diff` also markdown and html (one self-contained page).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Folder the chart is written to; an existing non-empty folder is refused unless --force.
    #[arg(short = 'o', long = "out", value_name = "DIR", default_value = "chart")]
    out: PathBuf,
    /// Chart name (default: the stack's `name:`, else the first file's folder name), made a DNS
    /// label.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Namespace for every object (the `namespaceOverride` value; default: the release namespace).
    #[arg(long, value_name = "NS", value_parser = namespace)]
    namespace: Option<String>,
    /// Kubernetes version the chart targets, MAJOR.MINOR (1.25 or later).
    #[arg(long = "kube-version", value_name = "VERSION", default_value = "1.33", value_parser = kube_version)]
    kube_version: (u32, u32),
    /// Write nothing: print the diff report of the chart against --out (as `migrate diff
    /// --against OUT` does; a missing folder shows every file as added) and the ledger summary.
    #[arg(long)]
    dry_run: bool,
    /// Replace an existing non-empty output folder.
    #[arg(long)]
    force: bool,
    /// Where secret values go: inline (a Secret per secret, template file mode 0600) or
    /// external-secrets (ExternalSecret objects; no value enters the chart).
    #[arg(long, value_enum, default_value_t = SecretsArg::Inline)]
    secrets: SecretsArg,
    /// Read the stack from a live Swarm manager through the Docker API instead of stack files
    /// (see docs/live-swarm.md).
    #[arg(long, conflicts_with_all = ["file", "files", "env_file"], help_heading = "Live Swarm")]
    from_swarm: bool,
    /// Docker daemon of a Swarm manager: unix:///path, tcp://HOST:PORT or http://HOST:PORT
    /// (default: $DOCKER_HOST, else unix:///var/run/docker.sock).
    #[arg(
        long = "docker-host",
        value_name = "URL",
        requires = "from_swarm",
        help_heading = "Live Swarm"
    )]
    docker_host: Option<String>,
    /// Read the services of this stack only (label com.docker.stack.namespace=NAME); its name
    /// prefix is removed from every object, as `docker stack deploy` added it.
    #[arg(
        long,
        value_name = "NAME",
        requires = "from_swarm",
        conflicts_with = "service",
        help_heading = "Live Swarm"
    )]
    stack: Option<String>,
    /// Read this service only (its Swarm name); repeatable.
    #[arg(
        long,
        value_name = "NAME",
        requires = "from_swarm",
        help_heading = "Live Swarm"
    )]
    service: Vec<String>,
    /// Keep the @sha256 digest Swarm pinned on each image (default: the tag only).
    #[arg(long, requires = "from_swarm", help_heading = "Live Swarm")]
    pin_digests: bool,
    /// Folder of files named after the secrets (stack-local name, or Swarm name) holding their
    /// values; Swarm never returns secret data, so secrets without a file are needs-input.
    #[arg(
        long,
        value_name = "DIR",
        requires = "from_swarm",
        help_heading = "Live Swarm"
    )]
    secrets_dir: Option<PathBuf>,
    #[command(flatten)]
    mesh: MeshArgs,
}

/// Istio, partial migration, lanes and the bridge's mapping file (docs/istio.md).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Mesh (Istio, partial migration, lanes)")]
struct MeshArgs {
    /// Generate Istio objects in the chart (gated by the value istio.enabled): Gateway and
    /// VirtualService from Traefik labels, a DestinationRule per service, PeerAuthentication for
    /// encrypted networks, ServiceEntries for services left on Swarm.
    #[arg(long)]
    istio: bool,
    /// The service mesh the chart targets; `istio` turns on --istio.
    #[arg(long, value_enum, default_value_t = MeshArg::None)]
    mesh: MeshArg,
    /// How published ports without Traefik labels are exposed: none (a ClusterIP Service, as
    /// before) or istio (an ingress-gateway server and route per published port; needs --istio).
    #[arg(long, value_enum, default_value_t = IngressArg::None)]
    ingress: IngressArg,
    /// Namespace-wide mutual TLS (a PeerAuthentication without selector): strict, permissive or
    /// disable. Services on encrypted networks get STRICT regardless. Needs --istio.
    #[arg(long, value_enum, value_name = "MODE")]
    mtls: Option<MtlsArg>,
    /// Eject failing pods: DestinationRule outlierDetection from each service's health check
    /// (per service: x-istio.outlierDetection). Needs --istio.
    #[arg(long)]
    outlier_detection: bool,
    /// Migrate only these services (comma-separated or repeated); the others stay on Swarm.
    #[arg(long, value_name = "SERVICES", value_delimiter = ',')]
    only: Vec<String>,
    /// Leave these services on Swarm (comma-separated or repeated).
    #[arg(long, value_name = "SERVICES", value_delimiter = ',')]
    except: Vec<String>,
    /// Where a service left on Swarm answers, NAME=HOST:PORT (repeatable): the ServiceEntry
    /// (and WorkloadEntry for an IP) the mesh reaches it through.
    #[arg(long = "legacy-endpoint", value_name = "NAME=HOST:PORT", value_parser = legacy_endpoint)]
    legacy_endpoint: Vec<(String, migrator::emit::istio::Endpoint)>,
    /// A mapping file (docs/mapping.md) whose on_swarm endpoints are used for services left on
    /// Swarm (--legacy-endpoint wins for the same service).
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,
    /// Lanes of every migrated service (comma-separated): a Deployment per lane, DestinationRule
    /// subsets, and routes on the lane header falling back to the stable lane. Needs --istio.
    #[arg(long, value_name = "LANES", value_delimiter = ',', value_parser = lane)]
    lanes: Vec<String>,
    /// The header lanes are matched on (default x-lane; Kitex's rpc-persist-lane is matched too).
    #[arg(long, value_name = "HEADER", value_parser = lane_header)]
    lane_header: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MeshArg {
    None,
    Istio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum IngressArg {
    None,
    Istio,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MtlsArg {
    Strict,
    Permissive,
    Disable,
}

/// `--legacy-endpoint redis=10.0.0.5:6379`.
fn legacy_endpoint(text: &str) -> Result<(String, migrator::emit::istio::Endpoint), String> {
    let (name, addr) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not NAME=HOST:PORT"))?;
    let (host, port) = mappings::split_endpoint(addr)?;
    Ok((
        name.to_string(),
        migrator::emit::istio::Endpoint { host, port },
    ))
}

/// `--lanes`: lowercase DNS labels of at most 20 characters, not `stable`.
fn lane(text: &str) -> Result<String, String> {
    if migrator::emit::istio::lane_ok(text) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "'{text}' is not a lane name: lowercase letters, digits and '-', at most 20, not 'stable'"
        ))
    }
}

/// `--lane-header`: a lowercase header name (Istio header matches need lowercase).
fn lane_header(text: &str) -> Result<String, String> {
    if migrator::emit::istio::extension::header_ok(text) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "'{text}' is not a lowercase header name (a-z, 0-9, '-')"
        ))
    }
}

impl MeshArgs {
    /// The mesh options, or a usage error for switches that need --istio.
    fn options(&self) -> Result<migrator::mesh::Options, String> {
        use migrator::emit::istio::Mtls;
        let istio = self.istio || self.mesh == MeshArg::Istio;
        if !istio {
            for (set, flag) in [
                (self.ingress == IngressArg::Istio, "--ingress istio"),
                (self.mtls.is_some(), "--mtls"),
                (self.outlier_detection, "--outlier-detection"),
                (!self.lanes.is_empty(), "--lanes"),
                (self.lane_header.is_some(), "--lane-header"),
            ] {
                if set {
                    return Err(format!("{flag} needs --istio (or --mesh istio)"));
                }
            }
        }
        Ok(migrator::mesh::Options {
            istio,
            ingress: self.ingress == IngressArg::Istio,
            mtls: match self.mtls {
                None => Mtls::Unset,
                Some(MtlsArg::Strict) => Mtls::Strict,
                Some(MtlsArg::Permissive) => Mtls::Permissive,
                Some(MtlsArg::Disable) => Mtls::Disable,
            },
            outlier: self.outlier_detection,
            only: self.only.clone(),
            except: self.except.clone(),
            lanes: self.lanes.clone(),
            lane_header: self.lane_header.clone(),
            legacy_endpoints: self.legacy_endpoint.clone(),
            mapping: None,
        })
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SecretsArg {
    Inline,
    ExternalSecrets,
}

/// `--namespace`: a DNS label, as Kubernetes requires.
fn namespace(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if ok {
        Ok(text.to_string())
    } else {
        Err(format!(
            "'{text}' is not a namespace name: lowercase letters, digits and '-', at most 63"
        ))
    }
}

/// `--kube-version`: `1.33` or `v1.33.2`; the chart's APIs need 1.25 or later.
fn kube_version(text: &str) -> Result<(u32, u32), String> {
    let t = text.trim().trim_start_matches('v');
    let mut parts = t.split('.');
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    match (major, minor) {
        (Some(1), Some(m)) if m >= 25 => Ok((1, m)),
        (Some(ma), Some(mi)) if ma >= 2 => Ok((ma, mi)),
        (Some(_), Some(_)) => Err(format!(
            "{text} is older than 1.25, the oldest version the chart supports"
        )),
        _ => Err(format!("'{text}' is not a version; write it like 1.33")),
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DialectArg {
    Swarm,
    Compose,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Markdown,
    Html,
}

/// The report format for `--format` (text is coloured when stdout is a terminal).
fn report_format(f: Format) -> diff::Format {
    match f {
        Format::Text => diff::Format::Text {
            colour: std::io::IsTerminal::is_terminal(&std::io::stdout()),
        },
        Format::Json => diff::Format::Json,
        Format::Markdown => diff::Format::Markdown,
        Format::Html => diff::Format::Html,
    }
}

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "diff") {
        return diff_cmd::main();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if let Some(flag) = swarm_flag_without_from_swarm(&cli) {
        let e = Cli::command().error(
            clap::error::ErrorKind::MissingRequiredArgument,
            format!("{flag} reads a live Swarm: add --from-swarm"),
        );
        let _ = e.print();
        return ExitCode::from(EXIT_USAGE);
    }
    if cli.file.is_empty() && cli.files.is_empty() && !cli.from_swarm {
        let e = Cli::command().error(
            clap::error::ErrorKind::MissingRequiredArgument,
            "no stack file given: name one with -f FILE or as an argument, or use --from-swarm",
        );
        let _ = e.print();
        return ExitCode::from(EXIT_USAGE);
    }
    if let Err(m) = cli.mesh.options() {
        let e = Cli::command().error(clap::error::ErrorKind::ArgumentConflict, m);
        let _ = e.print();
        return ExitCode::from(EXIT_USAGE);
    }
    init_tracing();
    match run(&cli) {
        Ok(out) => {
            // A reader that stops early (`| head`) is not an error worth a panic.
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("error: cannot write the report to stdout: {e}");
                    ExitCode::from(1)
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            // The library's errors are one paragraph that already includes their cause.
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

#[path = "migrate/diff_cmd.rs"]
mod diff_cmd;

/// The first live-Swarm option given without --from-swarm. clap's `requires` lets some
/// combinations through (`--stack NAME FILE` parses), so this is checked by hand as well.
fn swarm_flag_without_from_swarm(cli: &Cli) -> Option<&'static str> {
    if cli.from_swarm {
        return None;
    }
    [
        (cli.docker_host.is_some(), "--docker-host"),
        (cli.stack.is_some(), "--stack"),
        (!cli.service.is_empty(), "--service"),
        (cli.pin_digests, "--pin-digests"),
        (cli.secrets_dir.is_some(), "--secrets-dir"),
    ]
    .into_iter()
    .find_map(|(given, flag)| given.then_some(flag))
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// What one conversion produced: the chart (and, when asked, its template trees), the ledger and
/// the loader's warnings.
struct Prepared {
    output: emit::Output,
    trees: Vec<emit::Tree>,
    ledger: Ledger,
    warnings: Vec<load::Warning>,
    emit_opts: emit::Options,
    /// The temporary folder the templates were written to, when asked for.
    staging: Option<emit::bundle::Staging>,
}

/// The live Swarm read by --from-swarm (`$DOCKER_HOST` is read here: the library never reads the
/// environment).
fn from_swarm(cli: &Cli) -> Result<swarm::Imported, swarm::Error> {
    use std::io::IsTerminal as _;
    let host = cli
        .docker_host
        .clone()
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string());
    swarm::import(&swarm::Options {
        host,
        selection: swarm::Selection {
            stack: cli.stack.clone(),
            services: cli.service.clone(),
            pin_digests: cli.pin_digests,
            secrets_dir: cli.secrets_dir.clone(),
        },
        progress: std::io::stderr().is_terminal(),
    })
}

/// parse args → env map → load (or read the Swarm) → model → ledger → chart.
pub(crate) fn prepare(cli: &Cli, with_trees: bool, stage: bool) -> anyhow::Result<Prepared> {
    let opts = load::Options {
        files: cli.file.iter().chain(&cli.files).cloned().collect(),
        dialect: match cli.dialect {
            DialectArg::Swarm => Dialect::Swarm,
            DialectArg::Compose => Dialect::Compose,
        },
        env: if cli.from_swarm {
            BTreeMap::new()
        } else {
            environment(&cli.env_file)?
        },
    };
    let (stack, mut ledger, warnings, imported) = if cli.from_swarm {
        let mut imported = from_swarm(cli)?;
        let stack = std::mem::take(&mut imported.stack);
        let ledger = imported.ledger();
        let warnings = std::mem::take(&mut imported.warnings);
        (stack, ledger, warnings, Some(imported))
    } else {
        let loaded = load::load(&opts)?;
        // The model and the ledger only read the loaded tree: build them side by side. Then free
        // the tree before the chart is generated (it is the largest structure for big stacks).
        let (stack, ledger) = std::thread::scope(|scope| {
            let ledger = scope.spawn(|| Ledger::from_loaded(&loaded));
            let stack = Stack::from_loaded(&loaded);
            let ledger = ledger
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (stack, ledger)
        });
        let stack = stack?;
        // A partial move would keep the other fields alive to the end of `run`: let the tree go
        // now, freed beside the chart's generation.
        let load::Loaded { warnings, root, .. } = loaded;
        migrator::dispose::in_background(root);
        (stack, ledger, warnings, None)
    };
    let emit_opts = emit::Options {
        name: emit::chart_name(
            cli.name
                .as_deref()
                .or(imported.as_ref().and_then(|i| i.stack_name.as_deref())),
            &stack,
            opts.files.first().map(PathBuf::as_path),
        ),
        namespace: cli.namespace.clone(),
        kube_version: cli.kube_version,
        secrets: match cli.secrets {
            SecretsArg::Inline => SecretMode::Inline,
            SecretsArg::ExternalSecrets => SecretMode::ExternalSecrets,
        },
        stage: None,
    };
    let mut mesh = cli.mesh.options().map_err(anyhow::Error::msg)?;
    if let Some(path) = &cli.mesh.mapping {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("{}: cannot read the mapping file: {e}", path.display())
        })?;
        let file = mappings::parse_yaml(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e}. Fix the mapping file (docs/mapping.md).",
                path.display()
            )
        })?;
        mesh.mapping = Some((path.display().to_string(), file));
    }
    // Writing the chart: its templates go to the temporary folder while they are generated.
    // Made only now, after the input (a live Swarm can take a while), so it exists for the
    // chart's generation alone. When it cannot be made, the chart is generated in memory and the
    // write at the end reports why. Dropped on an error, it removes the folder.
    let staging = if stage {
        emit::bundle::Staging::create(&cli.out, cli.force).ok()
    } else {
        None
    };
    let emit_opts = emit::Options {
        stage: staging.as_ref().map(|s| s.dir().to_path_buf()),
        ..emit_opts
    };
    // Also refines the ledger with the chart's findings and the partial-migration entries.
    let (output, trees) =
        migrator::mesh::chart_with_trees(&stack, &emit_opts, &mesh, &mut ledger, with_trees)?;
    migrator::dispose::in_background(stack);
    if let Some(imported) = &imported {
        imported.annotate(&mut ledger);
    }
    Ok(Prepared {
        output,
        trees,
        ledger,
        warnings,
        emit_opts,
        staging,
    })
}

/// `migrate`: writes the chart (or, with --dry-run, prints the diff report against --out).
fn run(cli: &Cli) -> anyhow::Result<String> {
    let Prepared {
        output,
        ledger,
        warnings,
        emit_opts,
        staging,
        ..
    } = prepare(
        cli,
        false,
        !cli.dry_run && !matches!(cli.format, Format::Markdown | Format::Html),
    )?;
    if cli.dry_run {
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        let report = diff::against_dir(&output.bundle, &cli.out, &ledger)?;
        let body = diff::format::render(&report, report_format(cli.format))?;
        if matches!(cli.format, Format::Text) {
            return Ok(format!(
                "dry run: chart {} would be written to {} ({} files)\n{body}",
                emit_opts.name,
                cli.out.display(),
                output.bundle.files.len()
            ));
        }
        return Ok(body);
    }
    if matches!(cli.format, Format::Markdown | Format::Html) {
        anyhow::bail!(
            "--format markdown and html are report formats: use them with --dry-run or `migrate diff`"
        );
    }
    // Refuse a non-empty folder before anything is printed.
    emit::Bundle::check_target(&cli.out, cli.force)?;
    // The files are written while the ledger is formatted and printed (the file system and the
    // formatting each take about as long for a large stack). A failed write still fails the run.
    let text = std::thread::scope(|scope| -> anyhow::Result<String> {
        let writer = scope.spawn(|| match staging {
            Some(staging) => output.bundle.write_staged(staging, &output.staged),
            None => output.bundle.write(&cli.out, cli.force),
        });
        let text = report(cli, &emit_opts, &warnings, &ledger, &output);
        writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        text
    })?;
    // The process exits next: freeing the chart and the ledger (tens of thousands of
    // allocations, one by one) would only cost time.
    std::mem::forget(output);
    std::mem::forget(ledger);
    Ok(text)
}

/// The report on stdout after the chart is written: the ledger as JSON (streamed to stdout;
/// returns "") or as text.
fn report(
    cli: &Cli,
    emit_opts: &emit::Options,
    warnings: &[load::Warning],
    ledger: &Ledger,
    output: &emit::Output,
) -> anyhow::Result<String> {
    let out_dir = cli.out.display().to_string();
    let text = match cli.format {
        Format::Json => {
            // The ledger's own JSON shape, serialised straight from the entries: building a
            // `serde_json::Value` of a large ledger first would double the peak memory.
            let rest = || {
                let warnings = warnings.iter().map(load::Warning::to_json).collect();
                serde_json::to_string_pretty(&JsonOut {
                    counts: ledger.counts(),
                    warnings,
                    chart: &emit_opts.name,
                    out: &out_dir,
                    dry_run: cli.dry_run,
                    files: output.bundle.listing_staged(&output.staged),
                })
            };
            // Streamed to stdout: the text of a large ledger is not held in memory as well. The
            // entries (most of the text) go through the ledger's own writer, which prints what
            // serde_json's pretty printer would; the other fields follow, printed by serde_json
            // on a thread of their own meanwhile (the file listing of a large chart is sizeable).
            let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            let rest = std::thread::scope(|scope| -> anyhow::Result<String> {
                let other = std::thread::Builder::new()
                    .name("report-rest".into())
                    .spawn_scoped(scope, rest);
                stdout.write_all(b"{\n  \"entries\": ")?;
                migrator::report::ledger::json::write_entries(&mut stdout, &ledger.entries, 1)?;
                Ok(match other {
                    Ok(handle) => handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?,
                    Err(_) => rest()?,
                })
            })?;
            stdout.write_all(b",\n")?;
            stdout.write_all(rest.strip_prefix("{\n").unwrap_or(&rest).as_bytes())?;
            stdout.write_all(b"\n")?;
            stdout.flush()?;
            String::new()
        }
        Format::Text | Format::Markdown | Format::Html => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            format!(
                "{}\nwrote chart {} to {out_dir} ({} files)\n",
                ledger.to_text(),
                emit_opts.name,
                output.bundle.files.len()
            )
        }
    };
    Ok(text)
}

/// `--format json` output: the ledger's JSON plus where the chart went and its files.
#[derive(serde::Serialize)]
/// (The `entries` array comes first and is written separately.)
struct JsonOut<'a> {
    counts: BTreeMap<migrator::report::Status, usize>,
    warnings: Vec<serde_json::Value>,
    chart: &'a str,
    out: &'a str,
    dry_run: bool,
    files: migrator::emit::bundle::Listing<'a>,
}

/// The interpolation environment: the `--env-file`s in order, then the process environment on top
/// (as Compose does: a variable set in the shell wins over a file).
fn environment(env_files: &[PathBuf]) -> Result<BTreeMap<String, String>, migrator::Error> {
    let process = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    load::environment(env_files, process)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_come_from_flags_then_arguments() {
        let cli = Cli::try_parse_from(["migrate", "-f", "a.yml", "b.yml", "--file", "c.yml"])
            .expect("parse");
        assert_eq!(cli.file, [PathBuf::from("a.yml"), PathBuf::from("c.yml")]);
        assert_eq!(cli.files, [PathBuf::from("b.yml")]);
        assert!(matches!(cli.dialect, DialectArg::Swarm));
        assert!(matches!(cli.format, Format::Text));
    }

    #[test]
    fn swarm_flags_need_from_swarm_and_exclude_files() {
        let cli = Cli::try_parse_from([
            "migrate",
            "--from-swarm",
            "--stack",
            "shop",
            "--secrets-dir",
            "s",
            "--pin-digests",
        ])
        .expect("parse");
        assert!(cli.from_swarm && cli.pin_digests);
        assert_eq!(cli.stack.as_deref(), Some("shop"));
        let cli = Cli::try_parse_from(["migrate", "--stack", "shop", "a.yml"]).expect("parse");
        assert_eq!(swarm_flag_without_from_swarm(&cli), Some("--stack"));
        assert!(Cli::try_parse_from(["migrate", "--pin-digests"]).is_err());
        for bad in [
            &["migrate", "--from-swarm", "a.yml"][..],
            &[
                "migrate",
                "--from-swarm",
                "--stack",
                "a",
                "--service",
                "a_web",
            ],
            &["migrate", "--from-swarm", "--env-file", "x.env"],
        ] {
            let err = Cli::try_parse_from(bad).expect_err("usage error");
            assert!(err.use_stderr(), "{bad:?}");
        }
    }

    #[test]
    fn usage_errors_are_reported_to_stderr() {
        let err =
            Cli::try_parse_from(["migrate", "--format", "yaml", "a.yml"]).expect_err("bad value");
        assert!(err.use_stderr());
        let help = Cli::try_parse_from(["migrate", "--help"]).expect_err("help");
        assert!(!help.use_stderr());
        assert!(help.to_string().contains("64"));
    }

    #[test]
    fn env_files_are_read_in_order_under_the_process_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.env");
        let b = dir.path().join("b.env");
        std::fs::write(
            &a,
            "# base\nexport TAG=1.0\nNAME='shop'\n\nMIGRATOR_TEST_PATH_IS_SET=from-file\n",
        )
        .expect("write");
        std::fs::write(&b, "TAG=\"2.0\"\n").expect("write");
        let env = environment(&[a, b]).expect("env");
        assert_eq!(env.get("TAG").map(String::as_str), Some("2.0"));
        assert_eq!(env.get("NAME").map(String::as_str), Some("shop"));
        assert_eq!(env.get("PATH"), std::env::var("PATH").ok().as_ref());
        let bad = dir.path().join("bad.env");
        std::fs::write(&bad, "# comment\nNOT A KEY\n").expect("write");
        let err = environment(&[bad]).expect_err("a key with spaces");
        assert!(err.to_string().contains("bad.env:2:"), "{err}");
    }
}
