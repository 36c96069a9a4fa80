//! The bridge library's error type: what failed, with the context needed to fix it.
//!
//! `Display` names what failed; the underlying cause is only in `source()`, so a chain printer
//! (`{:#}` in anyhow) shows each part once.

use std::net::SocketAddr;

/// Everything that can fail in the bridge library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The YAML config file could not be parsed into [`crate::config::Config`].
    #[error("config is not valid YAML for the bridge")]
    ParseConfig {
        /// The YAML parser's error (it carries line and column).
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A `BRIDGE_*` environment override could not be applied.
    #[error("environment override {key}={value:?} rejected: {reason}")]
    EnvOverride {
        /// The variable name, e.g. `BRIDGE_EUREKA_LISTEN`.
        key: String,
        /// The value as given (never a secret: secret values are replaced by `***`).
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The config parsed but a field is out of range or inconsistent.
    #[error("invalid config at `{field}`: {reason}")]
    InvalidConfig {
        /// Dotted path of the offending field, e.g. `eureka.renewal_percent_threshold`.
        field: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An I/O error while serving (accept loop, local address lookup).
    #[error("{what}")]
    Io {
        /// What the bridge was doing.
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A Eureka request body (JSON or XML instance) was malformed or incomplete.
    #[error("bad Eureka payload: {reason}")]
    Payload {
        /// What is wrong, in the words the Java server uses where it has them
        /// (`Missing hostname`, `Mismatched appName, …`).
        reason: String,
    },
    /// JSON could not be parsed at all.
    #[error("malformed JSON")]
    Json {
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// XML could not be parsed at all.
    #[error("malformed XML")]
    Xml {
        /// The parser's error.
        #[source]
        source: quick_xml::Error,
    },
    /// A transcoding lane could not be built from its config (descriptors, routes).
    #[error("cannot start the lanes")]
    Lane {
        /// What was wrong.
        #[source]
        source: crate::lane::Error,
    },
    /// A background task panicked or was cancelled during shutdown.
    #[error("task {what} failed: {reason}")]
    Task {
        /// Which task.
        what: &'static str,
        /// Join error text.
        reason: String,
    },
    /// Kubernetes discovery could not start (no kubeconfig / in-cluster config, bad mapping file).
    #[error("Kubernetes discovery: {reason}")]
    Discovery {
        /// What went wrong and what to do.
        reason: String,
    },
}

impl Error {
    /// Shorthand for a [`Error::Payload`].
    pub fn payload(reason: impl Into<String>) -> Self {
        Error::Payload {
            reason: reason.into(),
        }
    }

    /// Shorthand for an [`Error::InvalidConfig`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
