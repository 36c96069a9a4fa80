//! Errors of mapping-file validation, each naming the entry (`services[i]`) and the field.

/// A mapping file that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
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
}
