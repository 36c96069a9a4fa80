//! Errors of mapping-file parsing and validation, each naming the entry (`services[i]`,
//! `services[i].grpc.rules[j]`, …) and the field.

/// A mapping file that cannot be read or breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The YAML does not parse or does not fit the types (unknown field, wrong type, …).
    #[error("line {line}, column {column}: {path}: {message}")]
    Syntax {
        /// 1-based line serde-saphyr reports (0 when unknown).
        line: u64,
        /// 1-based column serde-saphyr reports (0 when unknown).
        column: u64,
        /// The field path, e.g. `services[0].grpc.rules[1].verb` (`.` for the document).
        path: String,
        /// What serde-saphyr says is wrong.
        message: String,
    },
    /// A required name is empty.
    #[error("{at}.{field}: must not be empty")]
    Empty {
        /// The entry, e.g. `services[2]`.
        at: String,
        /// The field.
        field: &'static str,
    },
    /// Two entries share a name that must be unique.
    #[error("{at}.{field}: '{value}' is used by an earlier entry; names must be unique")]
    Duplicate {
        /// The entry.
        at: String,
        /// The field.
        field: &'static str,
        /// The repeated value.
        value: String,
    },
    /// The Kubernetes host is not a DNS-1123 subdomain.
    #[error(
        "{at}.kubernetes_host: '{host}' is not a valid DNS-1123 subdomain (lowercase letters, digits, '-' and '.')"
    )]
    BadHost {
        /// The entry.
        at: String,
        /// The host given.
        host: String,
    },
    /// A port outside 1–65535.
    #[error("{at}: {port} is not a port (1-65535)")]
    BadPort {
        /// The entry, e.g. `services[0].ports[1]`.
        at: String,
        /// The port given.
        port: u16,
    },
    /// A field whose value breaks its grammar (gRPC names, selectors, path templates, bodies).
    #[error("{at}.{field}: '{value}' {reason}")]
    Invalid {
        /// The entry, e.g. `services[1].grpc.rules[0]`.
        at: String,
        /// The field.
        field: &'static str,
        /// The value given.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Two rules of one service map the same HTTP verb and path.
    #[error("{at}: {verb} {path} is already mapped by an earlier rule of this service")]
    DuplicateRule {
        /// The later rule, e.g. `services[0].grpc.rules[3]`.
        at: String,
        /// The verb (`GET`, `POST`, … or the custom kind).
        verb: String,
        /// The path template.
        path: String,
    },
}
