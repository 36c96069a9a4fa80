//! Load stage: reads one or more stack files into one merged, interpolated and schema-validated
//! YAML tree whose nodes remember where they were written.
//! The order follows docker/cli's loader: parse → interpolate → cast → validate → normalise → merge.
//!
//! The tree has the shape `docker stack config` prints (checked against it in the tests), so the
//! model can read long syntax only:
//! - `ports`: list of maps `{mode: ingress, target, published?, protocol}` (short syntax expanded,
//!   ranges one entry each); long-syntax entries stay as written (no `mode` added).
//! - `volumes`: list of `{type, source?, target, read_only?, bind?, volume?, …}`; bind sources are
//!   absolute (`~` expanded from `HOME` of the environment map).
//! - `environment`: map, `env_file` contents merged in (entries marked with the env file's own
//!   file and line); `null` for `KEY` without a value. `labels`, `deploy.labels`, `build.labels`,
//!   `sysctls`, `logging.options`, `driver_opts`: maps of strings.
//! - `secrets`/`configs` of a service: lists of maps with `source`; `command`/`entrypoint`: lists;
//!   `healthcheck.test` string → `[CMD-SHELL, s]`; `networks` list → map of `null`;
//!   `extra_hosts` → list of `host:ip`; `dns`, `dns_search`, `tmpfs`, `env_file` → lists;
//!   `expose` → strings; `build` string → `{context}`.
//! - Top-level networks/volumes/secrets/configs: `null` → `{}`; `external: {name}` → `name` +
//!   `external: true`; external objects get `name` = their key; secret/config `file` absolute.
//! - Kept as written: durations (`10s`), byte sizes (`50M`), `cpus`, `version`, `x-` extensions.

mod block;
mod dotenv;
mod interpolate;
mod merge;
pub mod node;
mod normalise;
mod schema;
mod shlex;
mod split;
mod tree_json;
mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use tracing::debug_span;

use crate::Error;
use node::{Mark, Node, Value};

pub use schema::check_images;
pub use yaml::{ALIAS_NODE_LIMIT, parse_str};

/// Stack files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Which loader to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// `docker stack deploy` (docker/cli loader, schema v3.13, no `.env`, forbidden keys, `image`
    /// required).
    #[default]
    Swarm,
    /// Compose specification (compose-go: `.env`, `${VAR:+alt}`, compose-spec schema).
    Compose,
}

impl std::str::FromStr for Dialect {
    type Err = String;

    /// `swarm` or `compose` (the values of `--dialect`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "swarm" => Ok(Dialect::Swarm),
            "compose" => Ok(Dialect::Compose),
            other => Err(format!(
                "unknown dialect {other:?}; use swarm (docker stack deploy) or compose"
            )),
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Swarm => "swarm",
            Dialect::Compose => "compose",
        })
    }
}

/// What to load and with which environment.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// One or more stack files; later files override earlier ones.
    pub files: Vec<PathBuf>,
    /// Loader to imitate.
    pub dialect: Dialect,
    /// Variables for `${VAR}`; the library never reads the process environment itself.
    pub env: BTreeMap<String, String>,
}

/// Something the user should know that does not stop the load.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// Where it was written.
    pub mark: Mark,
    /// Dotted key path, e.g. `services.web.container_name`.
    pub key_path: String,
    /// What happened.
    pub message: String,
}

impl Warning {
    /// The warning as the JSON reports print it: path, file, line, col, message.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.key_path,
            "file": &*self.mark.file,
            "line": self.mark.line,
            "col": self.mark.col,
            "message": self.message,
        })
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.mark, self.key_path, self.message)
    }
}

/// The result of [`load`].
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Merged, interpolated, validated tree in long syntax (the shape `docker stack config` prints).
    pub root: Node,
    /// Absolute folder of the first file; relative paths in the stack resolve against it.
    pub base_dir: PathBuf,
    /// Unset variables, ignored and deprecated keys, and similar notes.
    pub warnings: Vec<Warning>,
    /// The dialect the files were read in (the model's deploy checks depend on it).
    pub dialect: Dialect,
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// Formats a key path the way errors print it: `services.web.ports[0].target`.
pub fn key_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    if out.is_empty() {
        out.push_str("(top level)");
    }
    out
}

/// Loads, interpolates, validates, normalises and merges the stack files of `opts`.
///
/// Like `docker stack config`, this accepts a service without `image`; `docker stack deploy`
/// refuses it, and so does the model's [`crate::model::Checks::images`] check.
pub fn load(opts: &Options) -> Result<Loaded, Error> {
    let first = opts.files.first().ok_or(Error::NoFiles)?;
    let parent = first
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Like Go's filepath.Abs: absolute and lexically cleaned, symlinks left alone.
    let base_dir =
        normalise::clean(&std::path::absolute(parent).map_err(|source| Error::Read {
            path: first.clone(),
            source,
        })?);
    let mut warnings = Vec::new();
    let env = match opts.dialect {
        Dialect::Swarm => opts.env.clone(),
        Dialect::Compose => compose_env(&base_dir, &opts.env)?,
    };
    if !schema::available() {
        warnings.push(Warning {
            mark: Mark {
                file: first.display().to_string().into(),
                line: 1,
                col: 1,
            },
            key_path: key_path(&[]),
            message: "this build has no schemas (../shared/schemas was absent at build time); \
                      schema validation was skipped"
                .into(),
        });
    }
    // The schema's validator is compiled while the files are read and parsed (a large file is
    // parsed on two threads, and one finishes first); validation waits for it if need be.
    let dialect = opts.dialect;
    let _ = std::thread::Builder::new()
        .name("schema".into())
        .spawn(move || {
            let _ = schema::tree_validator(dialect);
        });
    let mut trees = Vec::with_capacity(opts.files.len());
    let mut first_version: Option<String> = None;
    for file in &opts.files {
        let _span = debug_span!("load", file = %file.display()).entered();
        let text = read_limited(file)?;
        let name = file.display().to_string();
        let mut root = split::parse_str(&name, &text)?;
        if !matches!(root.value, Value::Map(_)) {
            return Err(Error::Schema {
                mark: root.mark.clone(),
                key_path: key_path(&[]),
                message: "the top-level object must be a mapping".into(),
            });
        }
        if opts.dialect == Dialect::Swarm {
            // docker refuses to merge files that declare different versions.
            let v = schema::version(&root);
            match &first_version {
                None => first_version = Some(v),
                Some(f) if *f != v => {
                    return Err(Error::Invalid {
                        mark: root
                            .get("version")
                            .map_or_else(|| root.mark.clone(), |n| n.mark.clone()),
                        key_path: "version".into(),
                        message: format!(
                            "version mismatched between two composefiles: {f} and {v}; use the same version: in every file"
                        ),
                    });
                }
                Some(_) => {}
            }
            schema::check_forbidden(&root)?;
        }
        // Only a string holding `$` is interpolated, and a string can only hold one the text
        // writes as `$` or as an escape: without either, the walk would change nothing.
        if memchr::memchr2(b'$', b'\\', text.as_bytes()).is_some() {
            let mut interp = interpolate::Interpolator {
                env: &env,
                dialect: opts.dialect,
                warnings: Vec::new(),
            };
            interp.run(&mut root)?;
            warnings.append(&mut interp.warnings);
        }
        schema::validate(&root, opts.dialect)?;
        if opts.dialect == Dialect::Swarm {
            schema::note_ignored(&root, &mut warnings);
        }
        let mut norm = normalise::Normaliser {
            base_dir: &base_dir,
            env: &env,
            warnings: &mut warnings,
        };
        norm.file(&mut root)?;
        trees.push(root);
    }
    let mut trees = trees.into_iter();
    let mut root = trees.next().ok_or(Error::NoFiles)?;
    for over in trees {
        merge::merge_files(&mut root, over);
    }
    Ok(Loaded {
        root,
        base_dir,
        warnings,
        dialect: opts.dialect,
    })
}

/// Reads a file, refusing it before reading when it is over [`MAX_FILE_BYTES`].
fn read_limited(path: &Path) -> Result<String, Error> {
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let size = file.metadata().map_err(read_err)?.len();
    if size > MAX_FILE_BYTES {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            size,
            limit: MAX_FILE_BYTES,
        });
    }
    // The file may grow between stat and read: read one byte more than allowed at most.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit: MAX_FILE_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|e| Error::ParseStack {
        mark: Mark {
            file: path.display().to_string().into(),
            line: 1,
            col: 1,
        },
        message: format!(
            "the file is not UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// The compose environment: `.env` next to the first file, overridden by the explicit map.
fn compose_env(
    base_dir: &Path,
    explicit: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Error> {
    let path = base_dir.join(".env");
    if !path.exists() {
        return Ok(explicit.clone());
    }
    environment(&[path], explicit.clone())
}

/// The interpolation environment from `--env-file`s (compose `.env` format, read in order, later
/// files win) under `process`: a variable set in `process` wins over every file, as in Compose.
/// The caller passes the process environment; the library never reads it itself.
pub fn environment(
    env_files: &[PathBuf],
    process: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Error> {
    let mut from_files = BTreeMap::new();
    for path in env_files {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        // Values may refer to the process environment and to earlier lines and files.
        let mut scope = from_files.clone();
        scope.extend(process.iter().map(|(k, v)| (k.clone(), v.clone())));
        let vars =
            dotenv::parse_dotenv(&text, &scope).map_err(|(line, message)| Error::EnvFile {
                path: path.clone(),
                line,
                message,
            })?;
        from_files.extend(vars);
    }
    from_files.extend(process);
    Ok(from_files)
}

#[cfg(test)]
mod tests;
