//! What can go wrong while building a diff report.

use std::path::PathBuf;

/// A diff report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the compared folder cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A YAML file does not parse.
    #[error(
        "{path}:{line}: not valid YAML: {message}; fix the file or remove it from the compared folder"
    )]
    Parse {
        /// The file (relative to the chart).
        path: String,
        /// 1-based line.
        line: usize,
        /// What the parser said.
        message: String,
    },
    /// The chart holds a Helm action the in-process renderer does not know (a bug of `migrate`:
    /// the emitter wrote an action `diff::render` was not taught).
    #[error(
        "cannot render templates/{template} in-process: unknown Helm action `{action}` (report this as a bug of migrate)"
    )]
    Render {
        /// The template file.
        template: String,
        /// The action.
        action: String,
    },
    /// No cluster configuration was found or it is invalid.
    #[error(
        "cannot connect to the cluster: {message}; set KUBECONFIG or use --context, or run inside a pod with a service account"
    )]
    Config {
        /// What kube said.
        message: String,
    },
    /// The API server refused a request for lack of permission.
    #[error(
        "the Kubernetes API server refused to {verb} {object} in namespace {namespace} (403 Forbidden: {message}); the credentials need the `{verb}` permission on `{resource}` (check with `kubectl auth can-i {verb} {resource} -n {namespace}`)"
    )]
    Forbidden {
        /// The verb (`get`, `list`).
        verb: String,
        /// The resource as RBAC names it: plural, with `.group` outside the core group
        /// (`secrets`, `deployments.apps`).
        resource: String,
        /// What was asked for: `secrets/db-password`, or the resource for a list.
        object: String,
        /// The namespace.
        namespace: String,
        /// The server's message.
        message: String,
    },
    /// Any other failure talking to the API server.
    #[error("Kubernetes API request failed ({what}): {message}")]
    Api {
        /// The request.
        what: String,
        /// The error.
        message: String,
    },
}
