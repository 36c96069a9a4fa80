//! Errors of the migrator library: one variant per thing that failed, with the file, line, column
//! and key path in fields, so the binary can print one paragraph that says where and what to do.

use std::path::PathBuf;

use crate::load::node::Mark;

/// Everything that can make a migration fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{}: cannot read the file: {source}. Check the path and its permissions.", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A stack file is larger than the loader accepts.
    #[error("{}: the file is {size} bytes, more than the limit of {limit} bytes for a stack file. Split it, or check that this is the right file.", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The YAML syntax is wrong.
    #[error("{mark}: YAML syntax error: {message}. Fix the YAML at that line.")]
    ParseStack {
        /// Where the parser stopped.
        mark: Mark,
        /// The parser's message.
        message: String,
    },
    /// Aliases expand to too many nodes (for example the "billion laughs" document).
    #[error(
        "{mark}: YAML aliases expand to more than {limit} nodes; the file looks like an alias bomb. Remove the recursive aliases."
    )]
    AliasBomb {
        /// Where the expansion went over the limit.
        mark: Mark,
        /// The node limit.
        limit: usize,
    },
    /// `${VAR:?msg}` / `${VAR?msg}` with the variable unset (or empty for `:?`), or bad syntax.
    #[error(
        "{mark}: {key_path}: {message}. Set the variable in the environment or in an --env-file."
    )]
    Interpolate {
        /// Where the value was written.
        mark: Mark,
        /// Dotted key path, e.g. `services.web.image`.
        key_path: String,
        /// What went wrong, including the user's own message.
        message: String,
    },
    /// The document does not match the schema of its dialect.
    #[error("{mark}: {key_path}: {message}. See the compose file reference for this key.")]
    Schema {
        /// Where the offending key or value was written.
        mark: Mark,
        /// Dotted key path.
        key_path: String,
        /// What the schema says.
        message: String,
    },
    /// A service refers to a secret, config, network or volume that is not declared at the top level.
    #[error(
        "{mark}: {key_path}: {kind} '{name}' is not declared under the top-level '{kind}s:' key. Declare it there, or remove the reference."
    )]
    UnknownReference {
        /// Where the reference was written.
        mark: Mark,
        /// Dotted key path.
        key_path: String,
        /// `secret`, `config`, `network` or `volume`.
        kind: &'static str,
        /// The name referred to.
        name: String,
    },
    /// A `file:` source (secret, config, env_file) does not exist.
    #[error("{mark}: {key_path}: the file '{}' does not exist. Create it, fix the path (relative to the stack file), or mark the object `external: true`.", path.display())]
    MissingFile {
        /// Where the reference was written.
        mark: Mark,
        /// Dotted key path.
        key_path: String,
        /// The path that was looked for.
        path: PathBuf,
    },
    /// A value has the right type but cannot be understood (a bad duration, byte size, port range…).
    #[error("{mark}: {key_path}: {message}")]
    Invalid {
        /// Where the value was written.
        mark: Mark,
        /// Dotted key path.
        key_path: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// `load` was called without any stack file.
    #[error("no stack file given. Pass at least one file with -f.")]
    NoFiles,
    /// A service uses a key that `docker stack deploy` refuses.
    #[error("{mark}: {key_path}: '{key}' is not supported by docker stack deploy: {hint}")]
    Forbidden {
        /// Where the key was written.
        mark: Mark,
        /// Dotted key path.
        key_path: String,
        /// The forbidden key.
        key: String,
        /// What to use instead (docker's own advice).
        hint: String,
    },
    /// An `env_file` or `.env` file has a line the loader cannot read.
    #[error("{}:{line}: {message}. Fix that line of the environment file.", path.display())]
    EnvFile {
        /// The environment file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A chart file or folder could not be written.
    #[error("{}: cannot write the chart: {source}. Check the folder's permissions and free space.", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A command-line choice names what the stack does not have (`--only`, `--except`,
    /// `--legacy-endpoint`, `--mapping`).
    #[error("{flag}: {message}")]
    Choice {
        /// The option, e.g. `--only`.
        flag: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// The output folder exists and is not empty.
    #[error("{}: the output folder exists and is not empty. Pass --force to replace it, or choose another folder with --out.", path.display())]
    OutputExists {
        /// The folder.
        path: PathBuf,
    },
}
