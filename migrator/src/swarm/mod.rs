//! Live Swarm input (`migrate --from-swarm`): reads services, networks, configs and secrets from a
//! Swarm manager through the Docker API and turns them into the same tree, model and ledger a stack
//! file gives, with source keys naming the Swarm object and field.

pub mod client;
pub mod error;
pub mod map;

use std::path::PathBuf;

use crate::load::Warning;
use crate::load::node::Node;
use crate::model::{Checks, Stack};
use crate::report::{Ledger, Status};

pub use error::Error;
pub use map::{SecretSource, Selection};

/// What to read and from where.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The daemon: `unix:///var/run/docker.sock`, `tcp://HOST:PORT`, `http://HOST:PORT`.
    pub host: String,
    /// Which services, and how to treat images and secrets.
    pub selection: Selection,
    /// Draw a progress bar on stderr (the caller decides; only when stderr is a terminal).
    pub progress: bool,
}

/// A stack read from a live Swarm.
#[derive(Debug)]
pub struct Imported {
    /// The model, built from [`Imported::root`] exactly as from a loaded stack file.
    pub stack: Stack,
    /// The tree in the loader's shape (what the ledger is built from).
    pub root: Node,
    /// Swarm settings no stack key can express, and similar notes.
    pub warnings: Vec<Warning>,
    /// Every secret and where its value comes from.
    pub secrets: Vec<SecretSource>,
    /// The stack name, when all services belong to one stack.
    pub stack_name: Option<String>,
    /// The API version agreed with the daemon.
    pub api_version: String,
    /// Holds the config data the chart reads; removed when this value is dropped.
    _scratch: tempfile::TempDir,
}

/// A file name for a stack key (keys may hold characters a file name may not).
pub(crate) fn file_name(key: &str) -> String {
    let name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match name.as_str() {
        "" | "." | ".." => "config".to_string(),
        _ => name,
    }
}

/// Reads the Swarm. Runs the asynchronous Docker client on a runtime of its own, on this thread.
pub fn import(opts: &Options) -> Result<Imported, Error> {
    let _span = tracing::info_span!("swarm", host = %opts.host).entered();
    if let Some(dir) = &opts.selection.secrets_dir
        && !dir.is_dir()
    {
        return Err(Error::Io {
            path: dir.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "--secrets-dir is not a folder",
            ),
        });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            path: PathBuf::from("(tokio runtime)"),
            source,
        })?;
    let bar = if opts.progress {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(format!("connecting to {}", opts.host));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let fetched = runtime.block_on(client::fetch(
        &opts.host,
        opts.selection.stack.as_deref(),
        |step| {
            bar.set_message(step.to_string());
            bar.tick();
        },
    ));
    let fetched = match fetched {
        Ok(f) => f,
        Err(e) => {
            bar.finish_and_clear();
            return Err(e);
        }
    };
    bar.set_length(fetched.services.len() as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} reading services [{bar:30}] {pos}/{len} {msg}",
    ) {
        bar.set_style(style);
    }
    let scratch = tempfile::Builder::new()
        .prefix("migrate-swarm-")
        .tempdir()
        .map_err(|source| Error::Io {
            path: std::env::temp_dir(),
            source,
        })?;
    let mapped = map::map(
        &fetched,
        &opts.selection,
        scratch.path(),
        &opts.host,
        |name| {
            bar.inc(1);
            bar.set_message(name.to_string());
        },
    );
    bar.finish_and_clear();
    let mapped = mapped?;
    crate::load::check_images(&mapped.root)?;
    let stack = Stack::from_root(&mapped.root, scratch.path(), Checks::ALL)?;
    Ok(Imported {
        stack,
        root: mapped.root,
        warnings: mapped.warnings,
        secrets: mapped.secrets,
        stack_name: mapped.stack_name,
        api_version: fetched.api_version,
        _scratch: scratch,
    })
}

impl Imported {
    /// The conversion ledger of the tree, as [`Ledger::from_loaded`] gives for a file.
    pub fn ledger(&self) -> Ledger {
        Ledger::from_tree(&self.root)
    }

    /// Says in the ledger where each secret's value comes from: Swarm never returns secret data,
    /// so a secret is needs-input unless `--secrets-dir` held its file. Call after
    /// [`crate::emit::refine`].
    pub fn annotate(&self, ledger: &mut Ledger) {
        for s in &self.secrets {
            let path = format!("secrets.{}", s.key);
            for e in ledger
                .entries
                .iter_mut()
                .filter(|e| e.source.path == path && e.status != Status::Dropped)
            {
                match &s.file {
                    None => {
                        e.status = Status::NeedsInput;
                        e.reason = format!(
                            "Swarm never returns secret data: create the Secret in the cluster and set its name in values, or rerun with --secrets-dir DIR holding a file named {}",
                            s.key
                        )
                        .into();
                    }
                    Some(file) => {
                        e.reason = format!(
                            "{}; value read from {} (--secrets-dir)",
                            e.reason,
                            file.display()
                        )
                        .into();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::node::Mark;
    use crate::model::SourceKey;
    use crate::report::Entry;

    fn entry(path: &str, status: Status) -> Entry {
        Entry {
            source: SourceKey::new(
                Mark {
                    file: "swarm:secret/x:Spec.Name".into(),
                    line: 0,
                    col: 0,
                },
                path,
            ),
            service: None,
            rule: "secrets.*".into(),
            status,
            target: "Secret".into(),
            reason: "the file's content becomes the Secret's data".into(),
        }
    }

    #[test]
    fn the_ledger_says_where_each_secret_value_comes_from() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let imported = Imported {
            stack: Stack::default(),
            root: Node::new(
                crate::load::node::Value::Null,
                Mark {
                    file: "swarm:".into(),
                    line: 0,
                    col: 0,
                },
            ),
            warnings: Vec::new(),
            secrets: vec![
                SecretSource {
                    key: "db".into(),
                    swarm_name: "shop_db".into(),
                    file: None,
                    external: false,
                },
                SecretSource {
                    key: "tls".into(),
                    swarm_name: "shop_tls".into(),
                    file: Some(PathBuf::from("/s/tls")),
                    external: false,
                },
                SecretSource {
                    key: "old".into(),
                    swarm_name: "shop_old".into(),
                    file: None,
                    external: false,
                },
            ],
            stack_name: Some("shop".into()),
            api_version: "1.41".into(),
            _scratch: scratch,
        };
        let mut ledger = Ledger {
            entries: vec![
                entry("secrets.db", Status::NeedsInput),
                entry("secrets.tls", Status::Converted),
                entry("secrets.old", Status::Dropped),
            ],
        };
        imported.annotate(&mut ledger);
        let e = &ledger.entries;
        assert_eq!(e[0].status, Status::NeedsInput);
        assert!(
            e[0].reason.contains("Swarm never returns secret data")
                && e[0]
                    .reason
                    .contains("--secrets-dir DIR holding a file named db"),
            "{}",
            e[0].reason
        );
        assert_eq!(e[1].status, Status::Converted);
        assert!(
            e[1].reason
                .ends_with("value read from /s/tls (--secrets-dir)")
        );
        assert_eq!(e[2].status, Status::Dropped, "unused secrets stay dropped");
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name("nginx.conf"), "nginx.conf");
        assert_eq!(file_name("a/b c"), "a_b_c");
        assert_eq!(file_name(".."), "config");
    }
}
