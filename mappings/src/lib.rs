//! The mapping file shared by the migrator (which writes it) and the bridge (which reads it): for each
//! migrated service its Swarm name, Kubernetes host and ports, Eureka identity and, for gRPC
//! services, the `google.api.http`-style rules the bridge serves; plus the legacy apps the mesh
//! reaches through the bridge. Parse ([`parse_yaml`]), validate ([`MappingFile::validate`]) and
//! describe ([`json_schema`]) only; no I/O. The format is documented in `docs/mapping.md`.

pub mod error;
mod template;

pub use error::Error;

/// The whole mapping file.
#[derive(
    Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Mapping file",
    description = "Services moved to the mesh and how the bridge reaches them (docs/mapping.md)."
)]
pub struct MappingFile {
    /// The services that moved to the mesh.
    #[serde(default)]
    pub services: Vec<Service>,
    /// Legacy (Eureka-registered) apps that mesh callers reach over gRPC through the bridge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legacy: Vec<Legacy>,
    /// Services left on Swarm and the addresses the mesh reaches them at (the migrator's
    /// ServiceEntries; `migrate --mapping` reads them back as legacy endpoints).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_swarm: Vec<OnSwarm>,
}

/// A service left on Swarm and where it answers.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct OnSwarm {
    /// The service name in the Swarm stack (the ServiceEntry host the mesh calls it by).
    pub swarm_name: String,
    /// `host:port` addresses (IPv6 as `[addr]:port`): a published port on a Swarm node, or a
    /// load balancer in front of the service.
    #[serde(default)]
    pub endpoints: Vec<String>,
}

impl OnSwarm {
    /// The endpoints as (host, port); the first malformed one is an error.
    pub fn addresses(&self) -> Result<Vec<(String, u16)>, String> {
        self.endpoints.iter().map(|e| split_endpoint(e)).collect()
    }
}

/// Splits `host:port` (or `[v6]:port`) into its parts; the port must be 1–65535.
pub fn split_endpoint(text: &str) -> Result<(String, u16), String> {
    let bad = || format!("'{text}' is not host:port (IPv6 as [addr]:port)");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        (h, p)
    } else {
        text.rsplit_once(':').ok_or_else(bad)?
    };
    if host.is_empty() || host.contains(':') && !text.starts_with('[') {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((host.to_string(), p)),
        _ => Err(format!("'{text}': '{port}' is not a port (1-65535)")),
    }
}

/// One migrated service and the names it has on each side.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
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
    /// Present when the service now speaks gRPC: the HTTP routes legacy callers use, mapped to its
    /// methods. Absent for services that still speak plain HTTP (proxied as-is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<Grpc>,
}

/// A gRPC service and the HTTP rules that reach its methods.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Grpc {
    /// The full gRPC service name, e.g. `shop.orders.v1.Orders`.
    pub service: String,
    /// The HTTP rules, tried in order.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// A legacy app left on Swarm that mesh callers reach over gRPC: the bridge serves `grpc.service`
/// and turns each call into the HTTP request its rule describes, sent to the app found in Eureka.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Legacy {
    /// The Eureka application name of the legacy app.
    pub eureka_app: String,
    /// The gRPC service the mesh calls and the HTTP rules of the legacy app behind its methods.
    pub grpc: Grpc,
}

/// One HTTP route mapped to one gRPC method, as a `google.api.HttpRule`.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The method: `Method` (in the enclosing service) or `pkg.Service.Method`.
    pub selector: String,
    /// The HTTP verb.
    pub verb: Verb,
    /// The path template, e.g. `/v1/{name=shelves/*}` (google.api.http grammar).
    pub path: String,
    /// The request field the HTTP body fills: `*` for the whole message, or a field path.
    /// Absent when the request has no body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The response field sent as the HTTP body (a field path); absent for the whole response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
}

/// The HTTP verb of a rule: a lowercase name, or `{custom: {kind: HEAD}}` for any other.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Verb {
    /// `GET`.
    Get,
    /// `PUT`.
    Put,
    /// `POST`.
    Post,
    /// `DELETE`.
    Delete,
    /// `PATCH`.
    Patch,
    /// Any other method, e.g. `HEAD` or `OPTIONS`.
    Custom {
        /// The method name as sent.
        kind: String,
    },
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verb::Get => "GET",
            Verb::Put => "PUT",
            Verb::Post => "POST",
            Verb::Delete => "DELETE",
            Verb::Patch => "PATCH",
            Verb::Custom { kind } => kind,
        })
    }
}

/// Parses a mapping file from YAML (unknown fields rejected) and validates it.
///
/// A YAML or type error comes back as [`Error::Syntax`] with the line and column serde-saphyr
/// reports and the field path; a rule broken afterwards as the matching [`Error`] variant.
pub fn parse_yaml(yaml: &str) -> Result<MappingFile, Error> {
    // The closure must fail for serde-saphyr to stop reading; the field path goes out beside it.
    let mut path = String::from(".");
    let file = serde_saphyr::with_deserializer_from_str(yaml, |de| {
        serde_path_to_error::deserialize::<_, MappingFile>(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| syntax(&e, path))?;
    file.validate()?;
    Ok(file)
}

/// An [`Error::Syntax`] from a serde-saphyr error.
fn syntax(e: &serde_saphyr::Error, path: String) -> Error {
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    let full = e.without_snippet().to_string();
    // serde-saphyr appends the position; it is already in the error's own fields.
    let suffix = format!(" at line {line}, column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    Error::Syntax {
        line,
        column,
        path,
        message,
    }
}

/// The JSON Schema (draft 2020-12) of the mapping file, generated from the types; shipped as
/// `docs/mapping.schema.json`. It checks shape only; [`MappingFile::validate`] checks the rest.
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(MappingFile).to_value()
}

impl MappingFile {
    /// Checks the rules the types cannot express: unique Swarm names and Eureka apps, non-empty
    /// names, a DNS-1123 Kubernetes host, ports 1–65535, and for gRPC blocks a dotted service
    /// name and well-formed, distinct rules. Returns the first error.
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
            for (j, &port) in s.ports.iter().enumerate() {
                if port == 0 {
                    return Err(Error::BadPort {
                        at: format!("{at}.ports[{j}]"),
                        port,
                    });
                }
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
            if let Some(grpc) = &s.grpc {
                grpc.validate(&format!("{at}.grpc"))?;
            }
        }
        let mut seen_legacy = std::collections::BTreeSet::new();
        for (i, l) in self.legacy.iter().enumerate() {
            let at = format!("legacy[{i}]");
            if l.eureka_app.trim().is_empty() {
                return Err(Error::Empty {
                    at,
                    field: "eureka_app",
                });
            }
            if !seen_legacy.insert(l.eureka_app.to_ascii_uppercase()) {
                return Err(Error::Duplicate {
                    at,
                    field: "eureka_app",
                    value: l.eureka_app.clone(),
                });
            }
            l.grpc.validate(&format!("{at}.grpc"))?;
        }
        let mut seen_left = std::collections::BTreeSet::new();
        for (i, o) in self.on_swarm.iter().enumerate() {
            let at = format!("on_swarm[{i}]");
            if o.swarm_name.trim().is_empty() {
                return Err(Error::Empty {
                    at,
                    field: "swarm_name",
                });
            }
            if !seen_left.insert(o.swarm_name.as_str())
                || seen_swarm.contains(o.swarm_name.as_str())
            {
                return Err(Error::Duplicate {
                    at,
                    field: "swarm_name",
                    value: o.swarm_name.clone(),
                });
            }
            for (j, e) in o.endpoints.iter().enumerate() {
                if let Err(reason) = split_endpoint(e) {
                    return Err(Error::Invalid {
                        at: format!("{at}.endpoints[{j}]"),
                        field: "endpoint",
                        value: e.clone(),
                        reason: reason
                            .replace(&format!("'{e}' "), "")
                            .replace(&format!("'{e}': "), ""),
                    });
                }
            }
        }
        Ok(())
    }
}

impl Grpc {
    /// Checks the service name and each rule; `at` is the block, e.g. `services[0].grpc`.
    fn validate(&self, at: &str) -> Result<(), Error> {
        if self.service.trim().is_empty() {
            return Err(Error::Empty {
                at: at.into(),
                field: "service",
            });
        }
        if !template::is_ident_path(&self.service) || !self.service.contains('.') {
            return Err(Error::Invalid {
                at: at.into(),
                field: "service",
                value: self.service.clone(),
                reason: "is not a full gRPC service name (package.Service)".into(),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for (j, r) in self.rules.iter().enumerate() {
            let at = format!("{at}.rules[{j}]");
            let invalid = |field, value: &str, reason: String| Error::Invalid {
                at: at.clone(),
                field,
                value: value.into(),
                reason,
            };
            if r.selector.trim().is_empty() {
                return Err(Error::Empty {
                    at,
                    field: "selector",
                });
            }
            let method = match r.selector.rsplit_once('.') {
                Some((service, method)) if service == self.service => method,
                Some(_) => {
                    return Err(invalid(
                        "selector",
                        &r.selector,
                        format!("names a method outside '{}'", self.service),
                    ));
                }
                None => r.selector.as_str(),
            };
            if !template::is_ident(method) {
                return Err(invalid(
                    "selector",
                    &r.selector,
                    "is not a method name (an identifier)".into(),
                ));
            }
            if let Verb::Custom { kind } = &r.verb
                && (kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphabetic()))
            {
                return Err(invalid(
                    "verb",
                    kind,
                    "is not an HTTP method name (letters only)".into(),
                ));
            }
            if let Err(reason) = template::check(&r.path) {
                return Err(invalid("path", &r.path, reason));
            }
            if let Some(body) = &r.body
                && body != "*"
                && !template::is_ident_path(body)
            {
                return Err(invalid(
                    "body",
                    body,
                    "is neither '*' nor a field path (identifiers joined by '.')".into(),
                ));
            }
            if let Some(body) = &r.response_body
                && !template::is_ident_path(body)
            {
                return Err(invalid(
                    "response_body",
                    body,
                    "is not a field path (identifiers joined by '.')".into(),
                ));
            }
            let verb = r.verb.to_string();
            if !seen.insert((verb.to_ascii_uppercase(), r.path.as_str())) {
                return Err(Error::DuplicateRule {
                    at,
                    verb,
                    path: r.path.clone(),
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
            grpc: None,
        }
    }

    #[test]
    fn accepts_distinct_services() {
        let f = MappingFile {
            services: vec![svc("vote", "vote.voting.svc"), svc("result", "result")],
            ..Default::default()
        };
        assert_eq!(f.validate(), Ok(()));
    }

    #[test]
    fn rejects_duplicate_eureka_app_case_insensitively() {
        let mut b = svc("votes", "votes");
        b.eureka_app = "vote".into();
        let f = MappingFile {
            services: vec![svc("vote", "vote"), b],
            ..Default::default()
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
    fn on_swarm_endpoints_are_checked_and_names_are_not_migrated_ones() {
        let ok = MappingFile {
            services: vec![svc("vote", "vote")],
            on_swarm: vec![OnSwarm {
                swarm_name: "redis".into(),
                endpoints: vec![
                    "10.0.0.5:6379".into(),
                    "[fd00::1]:6379".into(),
                    "db.lan:1".into(),
                ],
            }],
            ..Default::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(
            ok.on_swarm[0].addresses(),
            Ok(vec![
                ("10.0.0.5".into(), 6379),
                ("fd00::1".into(), 6379),
                ("db.lan".into(), 1)
            ])
        );
        for (endpoint, reason) in [
            ("redis", "is not host:port"),
            ("redis:0", "is not a port"),
            ("redis:http", "is not a port"),
            (":6379", "is not host:port"),
            ("fd00::1:6379", "is not host:port"),
        ] {
            let f = MappingFile {
                on_swarm: vec![OnSwarm {
                    swarm_name: "redis".into(),
                    endpoints: vec![endpoint.into()],
                }],
                ..Default::default()
            };
            let err = f.validate().expect_err(endpoint).to_string();
            assert!(
                err.starts_with("on_swarm[0].endpoints[0].endpoint:"),
                "{err}"
            );
            assert!(err.contains(reason), "{endpoint}: {err}");
        }
        let both = MappingFile {
            services: vec![svc("vote", "vote")],
            on_swarm: vec![OnSwarm {
                swarm_name: "vote".into(),
                endpoints: vec![],
            }],
            ..Default::default()
        };
        assert!(matches!(both.validate(), Err(Error::Duplicate { .. })));
    }

    #[test]
    fn rejects_bad_host() {
        let f = MappingFile {
            services: vec![svc("vote", "Vote_Svc")],
            ..Default::default()
        };
        assert!(matches!(f.validate(), Err(Error::BadHost { .. })));
    }
}
