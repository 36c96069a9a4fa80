//! What can go wrong while reading a live Swarm, each with what to do about it. The Docker client's
//! own errors are sorted into these by [`classify`], so the user never sees a bare HTTP error.

use std::path::PathBuf;

/// The oldest Docker Engine API this reader accepts: 1.30 (Docker 17.06) added the configs API,
/// without which a stack cannot be read back.
pub const MIN_API_VERSION: (u32, u32) = (1, 30);

/// A failure to read the Swarm.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--docker-host` is not a URL this reader can use.
    #[error(
        "--docker-host {host}: {reason}; use unix:///path/to/docker.sock, tcp://HOST:PORT or http://HOST:PORT"
    )]
    BadHost {
        /// The host as given.
        host: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing answers at the host.
    #[error(
        "cannot reach the Docker daemon at {host}: {detail}. Start dockerd, or point --docker-host (or DOCKER_HOST) at a Swarm manager"
    )]
    Unreachable {
        /// The host tried.
        host: String,
        /// The underlying failure, in one line.
        detail: String,
    },
    /// The socket exists but this user may not open it.
    #[error(
        "permission denied on the Docker socket {host}. Run migrate as a user in the `docker` group (or as root), or use --docker-host tcp://… of a daemon you may reach"
    )]
    PermissionDenied {
        /// The host (socket) tried.
        host: String,
    },
    /// The daemon is not part of a Swarm, or is a worker.
    #[error(
        "the Docker daemon at {host} is not a Swarm manager ({detail}). Point --docker-host at a manager node (`docker node ls` on a manager lists them)"
    )]
    NotManager {
        /// The host tried.
        host: String,
        /// The node state the daemon reported.
        detail: String,
    },
    /// The daemon speaks an API older than this reader needs.
    #[error(
        "the Docker daemon at {host} speaks API {version}, older than {}.{} which reading a Swarm needs. Upgrade Docker Engine on the manager to 17.06 or later",
        MIN_API_VERSION.0,
        MIN_API_VERSION.1
    )]
    ApiTooOld {
        /// The host tried.
        host: String,
        /// The API version the daemon reported.
        version: String,
    },
    /// `--stack NAME` matched no service.
    #[error(
        "no stack named '{stack}' on the Swarm at {host} (no service has the label com.docker.stack.namespace={stack}). `docker stack ls` lists the stacks"
    )]
    NoStack {
        /// The stack name asked for.
        stack: String,
        /// The host asked.
        host: String,
    },
    /// `--service NAME` matched no service.
    #[error(
        "no service named '{service}' on the Swarm at {host}. `docker service ls` lists the services"
    )]
    NoService {
        /// The service name asked for.
        service: String,
        /// The host asked.
        host: String,
    },
    /// The Swarm has no services at all (no `--stack`/`--service` given).
    #[error("the Swarm at {host} runs no services; there is nothing to convert")]
    Empty {
        /// The host asked.
        host: String,
    },
    /// Two selected services (of different stacks) have the same name once the stack prefix is
    /// removed.
    #[error(
        "services {first} and {second} both become '{key}' once their stack prefix is removed. Select one stack with --stack NAME"
    )]
    NameClash {
        /// The stack-local name.
        key: String,
        /// The first Swarm name.
        first: String,
        /// The second Swarm name.
        second: String,
    },
    /// The daemon answered with an error this reader has no advice for.
    #[error("the Docker daemon at {host} refused {what}: {detail}")]
    Api {
        /// The host asked.
        host: String,
        /// What was asked (`listing services`).
        what: &'static str,
        /// The daemon's message.
        detail: String,
    },
    /// A Swarm object the daemon returned is not usable (e.g. a config whose data is not base64).
    #[error("swarm:{object}: {field}: {message}")]
    Object {
        /// `service/NAME`, `config/NAME`, …
        object: String,
        /// The field, e.g. `Spec.Data`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Reading `--secrets-dir` or writing the config data to the scratch folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The model refused the tree built from the Swarm (a bug in the mapping, or a Swarm object
    /// no stack file could express).
    #[error(transparent)]
    Model(#[from] crate::Error),
}

/// Sorts an error of the Docker client into one of the errors above. `what` says what was being
/// asked (`listing services`).
pub fn classify(err: &bollard::errors::Error, host: &str, what: &'static str) -> Error {
    use bollard::errors::Error as B;
    // `IOError` is transparent: its `source()` skips the I/O error itself.
    let kind = match err {
        B::IOError { err } => Some(err.kind()),
        _ => io_kind(err),
    };
    if let Some(kind) = kind {
        return match kind {
            std::io::ErrorKind::PermissionDenied => Error::PermissionDenied {
                host: host.to_string(),
            },
            _ => Error::Unreachable {
                host: host.to_string(),
                detail: one_line(err),
            },
        };
    }
    match err {
        B::SocketNotFoundError(path) => Error::Unreachable {
            host: host.to_string(),
            detail: format!("the socket {path} does not exist"),
        },
        B::RequestTimeoutError => Error::Unreachable {
            host: host.to_string(),
            detail: "no answer within the timeout".to_string(),
        },
        B::HyperLegacyError { .. } => Error::Unreachable {
            host: host.to_string(),
            detail: one_line(err),
        },
        B::DockerResponseServerError {
            status_code,
            message,
        } => {
            let lower = message.to_ascii_lowercase();
            if lower.contains("not a swarm manager") || lower.contains("not part of a swarm") {
                Error::NotManager {
                    host: host.to_string(),
                    detail: message.trim().to_string(),
                }
            } else if lower.contains("is too new") || lower.contains("client version") {
                // "client version 1.52 is too new. Maximum supported API version is 1.24"
                let version = message
                    .rsplit(' ')
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches('.')
                    .to_string();
                Error::ApiTooOld {
                    host: host.to_string(),
                    version,
                }
            } else {
                Error::Api {
                    host: host.to_string(),
                    what,
                    detail: format!("HTTP {status_code}: {}", message.trim()),
                }
            }
        }
        _ => Error::Api {
            host: host.to_string(),
            what,
            detail: one_line(err),
        },
    }
}

/// The kind of the first I/O error in the error's source chain.
fn io_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = e.source();
    }
    None
}

/// The error and its causes on one line, without repeating a cause a message already includes.
fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = e.source();
    }
    out
}

/// Whether the daemon's API version (`1.41`) is at least [`MIN_API_VERSION`]; `None` when the text
/// is not a version.
pub fn api_recent_enough(version: &str) -> Option<bool> {
    let (major, minor) = version.trim().split_once('.')?;
    let v = (major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?);
    Some(v >= MIN_API_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::errors::Error as B;
    use std::io;

    const HOST: &str = "unix:///run/x.sock";

    #[test]
    fn permission_denied_on_the_socket_says_to_join_the_docker_group() {
        let err = B::IOError {
            err: io::Error::new(io::ErrorKind::PermissionDenied, "Permission denied"),
        };
        let e = classify(&err, HOST, "listing services");
        assert!(matches!(e, Error::PermissionDenied { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("unix:///run/x.sock"), "{text}");
        assert!(text.contains("`docker` group"), "{text}");
    }

    #[test]
    fn connection_refused_and_missing_socket_are_unreachable() {
        for err in [
            B::IOError {
                err: io::Error::new(io::ErrorKind::ConnectionRefused, "Connection refused"),
            },
            B::IOError {
                err: io::Error::new(io::ErrorKind::NotFound, "No such file or directory"),
            },
            B::SocketNotFoundError("/run/x.sock".into()),
            B::RequestTimeoutError,
        ] {
            let e = classify(&err, HOST, "pinging");
            assert!(matches!(e, Error::Unreachable { .. }), "{err:?} → {e:?}");
            assert!(e.to_string().contains("Start dockerd"), "{e}");
        }
    }

    #[test]
    fn a_worker_or_a_lone_daemon_is_not_a_manager() {
        for message in [
            "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.",
            "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.",
        ] {
            let err = B::DockerResponseServerError {
                status_code: 503,
                message: message.into(),
            };
            let e = classify(&err, HOST, "listing services");
            assert!(matches!(e, Error::NotManager { .. }), "{e:?}");
            assert!(e.to_string().contains("manager node"), "{e}");
        }
    }

    #[test]
    fn a_daemon_refusing_the_client_version_is_too_old() {
        let err = B::DockerResponseServerError {
            status_code: 400,
            message: "client version 1.41 is too new. Maximum supported API version is 1.24".into(),
        };
        let e = classify(&err, HOST, "listing services");
        match &e {
            Error::ApiTooOld { version, .. } => assert_eq!(version, "1.24"),
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("Upgrade Docker Engine"), "{e}");
    }

    #[test]
    fn other_daemon_errors_keep_status_and_message() {
        let err = B::DockerResponseServerError {
            status_code: 500,
            message: "boom".into(),
        };
        let e = classify(&err, HOST, "listing configs");
        assert_eq!(
            e.to_string(),
            "the Docker daemon at unix:///run/x.sock refused listing configs: HTTP 500: boom"
        );
    }

    #[test]
    fn api_versions_compare_numerically() {
        assert_eq!(api_recent_enough("1.41"), Some(true));
        assert_eq!(api_recent_enough("1.30"), Some(true));
        assert_eq!(api_recent_enough("1.29"), Some(false));
        assert_eq!(api_recent_enough("1.9"), Some(false));
        assert_eq!(api_recent_enough("2.0"), Some(true));
        assert_eq!(api_recent_enough("x"), None);
    }
}
