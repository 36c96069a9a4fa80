//! Partial migration: which services move (`--only` / `--except`) and every dependency that
//! crosses the boundary between the moved services and those left on Swarm.

use std::collections::BTreeSet;

use crate::error::Error;
use crate::model::{SourceKey, Stack};

/// The services that move and those that stay.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    /// Converted to Kubernetes.
    pub moved: BTreeSet<String>,
    /// Left on Swarm.
    pub left: BTreeSet<String>,
}

impl Selection {
    /// Whether some services stay on Swarm.
    pub fn is_partial(&self) -> bool {
        !self.left.is_empty()
    }
}

/// The selection for `--only` (empty: all) and `--except`; a name the stack does not have is an
/// error listing the services.
pub fn select(stack: &Stack, only: &[String], except: &[String]) -> Result<Selection, Error> {
    let known = || {
        stack
            .services
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (flag, names) in [("--only", only), ("--except", except)] {
        for n in names {
            if !stack.services.contains_key(n) {
                return Err(Error::Choice {
                    flag,
                    message: format!(
                        "the stack has no service '{n}'; its services are: {}",
                        known()
                    ),
                });
            }
        }
    }
    let mut sel = Selection::default();
    for name in stack.services.keys() {
        let chosen = (only.is_empty() || only.contains(name)) && !except.contains(name);
        if chosen {
            sel.moved.insert(name.clone());
        } else {
            sel.left.insert(name.clone());
        }
    }
    if sel.moved.is_empty() {
        return Err(Error::Choice {
            flag: if except.is_empty() {
                "--only"
            } else {
                "--except"
            },
            message: "no service is left to migrate; name at least one service that moves".into(),
        });
    }
    Ok(sel)
}

/// How one service refers to another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Via {
    /// `depends_on`.
    DependsOn,
    /// `links` (`service` or `service:alias`).
    Link,
    /// An environment variable whose value names the service as a host (`redis`,
    /// `redis:6379`, `postgres://db:5432/x`).
    Environment(String),
    /// Both are on this network, so one may call the other by name.
    Network(String),
}

/// A reference from one service to another across the boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The service that calls.
    pub from: String,
    /// The service called.
    pub to: String,
    /// How the reference is written.
    pub via: Via,
    /// Where.
    pub source: SourceKey,
    /// The port the reference names (`redis:6379` in an environment value), if any.
    pub port: Option<u16>,
}

/// Environment keys that name a peer's address.
const HOST_HINTS: [&str; 7] = ["HOST", "URL", "URI", "ADDR", "SERVER", "ENDPOINT", "DSN"];

/// Whether an environment value names `service` as a host: the whole value, `service:port`, or
/// a URL's host; for keys that say they hold an address (`*_HOST`, `*_URL`, …) any token equal
/// to the name counts.
pub fn names_host(key: &str, value: &str, service: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    let hinted = HOST_HINTS.iter().any(|h| upper.contains(h));
    let tokens =
        value.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
    if value == service {
        return true;
    }
    let mut rest = value;
    while let Some(at) = rest.find(service) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + service.len()..].chars().next();
        let bounded_before = before.is_none_or(|c| matches!(c, '/' | '@' | ',' | ' ' | '='));
        if bounded_before && after == Some(':') {
            return true;
        }
        if bounded_before && matches!(after, None | Some('/')) && value.contains("://") {
            return true;
        }
        rest = &rest[at + service.len()..];
    }
    hinted && { tokens.into_iter().any(|t| t == service) }
}

/// The port written after `service:` in an environment value (`redis:6379`,
/// `postgres://db:5432/x`), if any.
pub fn port_after(value: &str, service: &str) -> Option<u16> {
    let mut rest = value;
    while let Some(at) = rest.find(service) {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at + service.len()..];
        if before.is_none_or(|c| matches!(c, '/' | '@' | ',' | ' ' | '='))
            && let Some(digits) = tail.strip_prefix(':')
        {
            let end = digits
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(digits.len());
            if let Ok(p) = digits[..end].parse::<u16>()
                && p > 0
            {
                return Some(p);
            }
        }
        rest = tail;
    }
    None
}

/// Every reference that crosses the boundary, in both directions, in service order.
pub fn edges(stack: &Stack, sel: &Selection) -> Vec<Edge> {
    let mut out = Vec::new();
    // Without a boundary there is nothing to find (and large stacks pay nothing for it).
    if !sel.is_partial() {
        return out;
    }
    let crosses = |a: &str, b: &str| {
        a != b && stack.services.contains_key(b) && (sel.moved.contains(a) != sel.moved.contains(b))
    };
    for (name, svc) in &stack.services {
        for d in &svc.depends_on {
            if crosses(name, &d.value) {
                out.push(Edge {
                    from: name.clone(),
                    to: d.value.clone(),
                    via: Via::DependsOn,
                    source: d.source.clone(),
                    port: None,
                });
            }
        }
        for l in &svc.links {
            let target = l.value.split(':').next().unwrap_or("").to_string();
            if crosses(name, &target) {
                out.push(Edge {
                    from: name.clone(),
                    to: target,
                    via: Via::Link,
                    source: l.source.clone(),
                    port: None,
                });
            }
        }
        for (key, v) in &svc.environment {
            let Some(value) = &v.value else {
                continue;
            };
            for other in stack.services.keys() {
                if crosses(name, other) && names_host(key, value, other) {
                    out.push(Edge {
                        from: name.clone(),
                        to: other.clone(),
                        via: Via::Environment(key.clone()),
                        source: v.source.clone(),
                        port: port_after(value, other),
                    });
                }
            }
        }
        // Sharing a network is symmetric; it is reported from the moved side only (the moved
        // service may call the one left behind), explicit references in both directions.
        if !sel.moved.contains(name) {
            continue;
        }
        for (net, a) in &svc.networks {
            for (other, o) in &stack.services {
                if crosses(name, other) && o.networks.contains_key(net) {
                    out.push(Edge {
                        from: name.clone(),
                        to: other.clone(),
                        via: Via::Network(net.clone()),
                        source: a.source.clone(),
                        port: None,
                    });
                }
            }
        }
    }
    out
}

/// A copy of the stack holding only the moved services.
pub fn moved_stack(stack: &Stack, sel: &Selection) -> Stack {
    let mut s = stack.clone();
    s.services.retain(|n, _| sel.moved.contains(n));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_written_after_the_name() {
        assert_eq!(port_after("redis:6379", "redis"), Some(6379));
        assert_eq!(port_after("postgres://u:p@db:5432/votes", "db"), Some(5432));
        assert_eq!(port_after("http://db/api", "db"), None);
        assert_eq!(port_after("xdb:80,db:81", "db"), Some(81));
        assert_eq!(port_after("db:0", "db"), None);
    }

    #[test]
    fn environment_values_that_name_a_host() {
        for (key, value, hit) in [
            ("CACHE", "db", true),
            ("CACHE", "db:6379", true),
            ("DATABASE_URL", "postgres://u:p@db:5432/votes", true),
            ("BACKEND", "http://db/api", true),
            ("DB_HOST", "db", true),
            ("DB_HOSTS", "a,db,b", true),
            ("POSTGRES_USER", "db", true),
            ("POSTGRES_USER", "postgres", false),
            ("GREETING", "hello db users", false),
            ("MODE", "dbx:1", false),
            ("PATH", "/usr/db/bin", false),
        ] {
            assert_eq!(names_host(key, value, "db"), hit, "{key}={value}");
        }
    }
}
