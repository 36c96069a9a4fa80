//! The mapping file shared by the migrator (which writes it) and the bridge (which reads it): for each
//! migrated service its Swarm name, Kubernetes host and ports, and Eureka identity. Parse and
//! validate only; no I/O.

pub mod error;

pub use error::Error;

/// The whole mapping file.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    /// The services that moved to the mesh.
    #[serde(default)]
    pub services: Vec<Service>,
}

/// One migrated service and the names it has on each side.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The service name in the Swarm stack.
    pub swarm_name: String,
    /// The Kubernetes Service host, e.g. `vote.voting.svc.cluster.local`.
    pub kubernetes_host: String,
    /// The Service ports.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// The Eureka application name (upper-cased on the wire, as the Java server does).
    pub eureka_app: String,
    /// The Eureka `vipAddress` (the Spring service name legacy callers use).
    pub vip_address: String,
}

impl MappingFile {
    /// Checks the rules the types cannot express: unique Swarm names and Eureka apps, non-empty
    /// names, and a DNS-1123 Kubernetes host.
    pub fn validate(&self) -> Result<(), Error> {
        let mut seen_swarm = std::collections::BTreeSet::new();
        let mut seen_app = std::collections::BTreeSet::new();
        for (i, s) in self.services.iter().enumerate() {
            let at = format!("services[{i}]");
            for (field, v) in [
                ("swarm_name", &s.swarm_name),
                ("eureka_app", &s.eureka_app),
                ("vip_address", &s.vip_address),
            ] {
                if v.trim().is_empty() {
                    return Err(Error::Empty { at, field });
                }
            }
            if !is_dns_subdomain(&s.kubernetes_host) {
                return Err(Error::BadHost {
                    at,
                    host: s.kubernetes_host.clone(),
                });
            }
            if !seen_swarm.insert(s.swarm_name.as_str()) {
                return Err(Error::Duplicate {
                    at,
                    field: "swarm_name",
                    value: s.swarm_name.clone(),
                });
            }
            if !seen_app.insert(s.eureka_app.to_ascii_uppercase()) {
                return Err(Error::Duplicate {
                    at,
                    field: "eureka_app",
                    value: s.eureka_app.clone(),
                });
            }
        }
        Ok(())
    }
}

/// RFC 1123 subdomain as Kubernetes checks it: lowercase alphanumerics, `-` and `.`, at most 253
/// characters, each label starting and ending with an alphanumeric.
fn is_dns_subdomain(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, host: &str) -> Service {
        Service {
            swarm_name: name.into(),
            kubernetes_host: host.into(),
            ports: vec![80],
            eureka_app: name.to_uppercase(),
            vip_address: name.into(),
        }
    }

    #[test]
    fn accepts_distinct_services() {
        let f = MappingFile {
            services: vec![svc("vote", "vote.voting.svc"), svc("result", "result")],
        };
        assert_eq!(f.validate(), Ok(()));
    }

    #[test]
    fn rejects_duplicate_eureka_app_case_insensitively() {
        let mut b = svc("votes", "votes");
        b.eureka_app = "vote".into();
        let f = MappingFile {
            services: vec![svc("vote", "vote"), b],
        };
        assert_eq!(
            f.validate(),
            Err(Error::Duplicate {
                at: "services[1]".into(),
                field: "eureka_app",
                value: "vote".into()
            })
        );
    }

    #[test]
    fn rejects_bad_host() {
        let f = MappingFile {
            services: vec![svc("vote", "Vote_Svc")],
        };
        assert!(matches!(f.validate(), Err(Error::BadHost { .. })));
    }
}
