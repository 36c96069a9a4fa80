//! `migrate diff`: the chart `migrate` would write compared with an output folder or a live
//! cluster. The comparison lives in `migrator::diff`; this is its command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use migrator::diff;

use super::{Cli, EXIT_USAGE, Prepared, init_tracing, prepare, report_format};

/// Exit code when the report shows differences (as `diff` does).
const EXIT_DIFFERENCES: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "migrate diff",
    bin_name = "migrate diff",
    // Options of `migrate` that only concern writing the chart.
    mut_arg("out", |a| a.hide(true)),
    mut_arg("dry_run", |a| a.hide(true)),
    mut_arg("force", |a| a.hide(true)),
    about = "Shows what `migrate` would change, without writing anything: the chart it would write compared with an existing output folder, or its objects (rendered with the default values, as `helm template` does) compared with the live objects of a cluster. Objects are compared field by field by (apiVersion, kind, namespace, name); other chart files line by line. Then the ledger summary.",
    after_help = "Exit codes:\n  0   no differences\n  2   differences\n  1   error (bad stack, unreadable folder, cluster unreachable, permission refused)\n  64  usage error\n\n--against cluster reads the kubeconfig (KUBECONFIG, ~/.kube/config; --context picks a context) or,\ninside a pod, the service account. It only sends GET and LIST requests: it needs `get` and `list`\non the kinds the chart emits in the namespace. Server-populated fields (status, managedFields,\nresourceVersion, uid, creationTimestamp, generation) and fields left at their API default are\nnot differences.\n\nSecret values are never shown: a changed Secret lists the keys that changed with a short digest\n(<redacted sha256:XXXXXXXX>)."
)]
struct DiffCli {
    #[command(flatten)]
    base: Cli,
    /// What to compare with: a chart folder (e.g. the --out of an earlier run) or the word
    /// `cluster`.
    #[arg(long, value_name = "DIR|cluster")]
    against: String,
    /// Kubeconfig file for --against cluster (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context for --against cluster (default: the current context).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Helm release name the chart is installed as (default: the chart name).
    #[arg(long, value_name = "NAME")]
    release: Option<String>,
}

pub(super) fn main() -> ExitCode {
    let args = std::env::args_os().skip(1);
    let cli = match DiffCli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if cli.base.file.is_empty() && cli.base.files.is_empty() {
        eprintln!("error: no stack file given: name one with -f FILE or as an argument");
        return ExitCode::from(EXIT_USAGE);
    }
    init_tracing();
    match run(&cli) {
        Ok((text, differences)) => {
            print!("{text}");
            if differences {
                ExitCode::from(EXIT_DIFFERENCES)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: &DiffCli) -> anyhow::Result<(String, bool)> {
    let to_cluster = cli.against == "cluster";
    let Prepared {
        output,
        trees,
        ledger,
        warnings,
        emit_opts,
        ..
    } = prepare(&cli.base, to_cluster, false)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let report = if to_cluster {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let conn = diff::cluster::connect(&diff::cluster::Target {
                kubeconfig: cli.kubeconfig.clone(),
                context: cli.context.clone(),
            })
            .await?;
            let namespace = cli.base.namespace.clone().unwrap_or(conn.namespace.clone());
            let release = diff::render::Release {
                name: cli.release.clone().unwrap_or(emit_opts.name.clone()),
                namespace: namespace.clone(),
            };
            let rendered = diff::render::objects(&output.bundle, &trees, &release)?;
            let desired: Vec<serde_json::Value> =
                rendered.iter().map(|r| r.object.clone()).collect();
            let live =
                diff::cluster::fetch(&conn, &desired, &namespace, &release.name, &emit_opts.name)
                    .await?;
            Ok::<_, anyhow::Error>(diff::against_live(&rendered, live, &ledger))
        })?
    } else {
        diff::against_dir(&output.bundle, &PathBuf::from(&cli.against), &ledger)?
    };
    let text = diff::format::render(&report, report_format(cli.base.format))?;
    Ok((text, report.has_differences()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_takes_the_migrate_options_and_its_own() {
        let cli = DiffCli::try_parse_from([
            "diff",
            "-f",
            "a.yml",
            "b.yml",
            "--format",
            "html",
            "--against",
            "cluster",
            "--context",
            "prod",
            "--release",
            "shop",
        ])
        .expect("parse");
        assert_eq!(cli.base.file, [PathBuf::from("a.yml")]);
        assert_eq!(cli.base.files, [PathBuf::from("b.yml")]);
        assert_eq!(cli.against, "cluster");
        assert_eq!(cli.context.as_deref(), Some("prod"));
        assert_eq!(cli.release.as_deref(), Some("shop"));
        let missing =
            DiffCli::try_parse_from(["diff", "a.yml"]).expect_err("--against is required");
        assert!(missing.use_stderr());
        let help = DiffCli::try_parse_from(["diff", "--help"]).expect_err("help");
        assert!(help.to_string().contains("Usage: migrate diff"), "{help}");
    }
}
