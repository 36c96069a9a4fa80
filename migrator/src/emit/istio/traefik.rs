//! Traefik labels (`deploy.labels`, v2 `traefik.http.*` and v1 `traefik.frontend.*`) → routes the
//! Istio emitters turn into a Gateway, a VirtualService and a DestinationRule load balancer. Every
//! `traefik.*` label gets a note (converted, approximated, dropped or needs-input, with the reason).

use std::collections::{BTreeMap, BTreeSet};

use crate::model::SourceKey;
use crate::model::service::StringMap;
use crate::report::Status;

/// A URI match of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Uri {
    /// `Path(...)`: the exact path.
    Exact(String),
    /// `PathPrefix(...)`: a path prefix.
    Prefix(String),
}

/// One conjunction of matchers (a rule in disjunctive normal form has one per `||` branch).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Match {
    /// `Host(...)` names (any of them); empty: any host.
    pub hosts: Vec<String>,
    /// `Path` / `PathPrefix`.
    pub uri: Option<Uri>,
    /// `Method(...)`.
    pub method: Option<String>,
    /// `Headers(key, value)`: exact header matches.
    pub headers: Vec<(String, String)>,
}

/// A redirect (`redirectscheme` middleware).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Redirect {
    /// `http` or `https`.
    pub scheme: String,
    /// 301 when `permanent=true`, else 302 (Traefik's default).
    pub code: u16,
    /// The target port, when set.
    pub port: Option<u32>,
}

/// One Traefik router → one HTTP route of the VirtualService.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Router {
    /// Router name (`traefik.http.routers.<name>`; `v1` for the v1 frontend).
    pub name: String,
    /// The rule label.
    pub source: Option<SourceKey>,
    /// The rule in disjunctive normal form.
    pub matches: Vec<Match>,
    /// Entry point names.
    pub entrypoints: Vec<String>,
    /// TLS is terminated at the gateway.
    pub tls: bool,
    /// The `tls.certresolver` (an ACME resolver: the gateway needs a Secret instead).
    pub cert_resolver: Option<String>,
    /// The destination port (the Traefik service's `loadbalancer.server.port`).
    pub port: Option<u32>,
    /// A prefix stripped before forwarding (`stripprefix`, v1 `PathPrefixStrip`).
    pub strip: Option<String>,
    /// A scheme redirect instead of a route.
    pub redirect: Option<Redirect>,
    /// Request headers set (`headers.customrequestheaders`).
    pub request_headers: Vec<(String, String)>,
    /// Response headers set (`headers.customresponseheaders`).
    pub response_headers: Vec<(String, String)>,
    /// The gateway port, for routes of a published port (`--ingress istio`).
    pub published: Option<u32>,
}

impl Router {
    /// All hosts of the rule (empty when some branch matches any host).
    pub fn hosts(&self) -> Vec<String> {
        if self.matches.iter().any(|m| m.hosts.is_empty()) {
            return Vec::new();
        }
        let set: BTreeSet<&String> = self.matches.iter().flat_map(|m| &m.hosts).collect();
        set.into_iter().cloned().collect()
    }
}

/// Sticky sessions → `consistentHash.httpCookie`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sticky {
    /// The cookie name.
    pub cookie: String,
    /// The label.
    pub source: SourceKey,
}

/// A ledger note about one label.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Note {
    /// The label.
    pub source: SourceKey,
    /// Status.
    pub status: Status,
    /// Istio object and field.
    pub target: String,
    /// Why.
    pub reason: String,
}

/// What the Traefik labels of one service ask for.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Routing {
    /// The routers that could be translated, in name order.
    pub routers: Vec<Router>,
    /// Sticky sessions, if any Traefik service asks for them.
    pub sticky: Option<Sticky>,
    /// One note per `traefik.*` label.
    pub notes: Vec<Note>,
}

/// Traefik's default sticky cookie name is derived from the backend; Istio needs a fixed name.
const DEFAULT_COOKIE: &str = "traefik-sticky";

/// Reads the Traefik labels of a service. `ports` are the service's container ports (the
/// destination port when no `loadbalancer.server.port` is given and there is exactly one).
pub(crate) fn parse(labels: &StringMap, ports: &[u32]) -> Routing {
    let mut out = Routing::default();
    let traefik: Vec<(&String, &crate::model::Sourced<String>)> = labels
        .iter()
        .filter(|(k, _)| k.starts_with("traefik."))
        .collect();
    if traefik.is_empty() {
        return out;
    }
    let note = |out: &mut Routing, src: &SourceKey, status, target: &str, reason: String| {
        out.notes.push(Note {
            source: src.clone(),
            status,
            target: target.to_string(),
            reason,
        });
    };
    if let Some(e) = labels.get("traefik.enable") {
        if e.value.eq_ignore_ascii_case("false") {
            for (_, v) in &traefik {
                note(
                    &mut out,
                    &v.source,
                    Status::Dropped,
                    "-",
                    "traefik.enable=false: Traefik does not route this service, so no Istio route is generated".into(),
                );
            }
            return out;
        }
        note(
            &mut out,
            &e.source,
            Status::Converted,
            "Gateway + VirtualService",
            "the service is exposed through the Istio ingress gateway".into(),
        );
    }

    // ── v2: group by router / service / middleware ──
    let mut routers: BTreeMap<String, BTreeMap<String, &crate::model::Sourced<String>>> =
        BTreeMap::new();
    let mut services: BTreeMap<String, BTreeMap<String, &crate::model::Sourced<String>>> =
        BTreeMap::new();
    let mut middlewares: BTreeMap<String, BTreeMap<String, &crate::model::Sourced<String>>> =
        BTreeMap::new();
    let mut v1: BTreeMap<String, &crate::model::Sourced<String>> = BTreeMap::new();
    for (k, v) in &traefik {
        let rest = &k["traefik.".len()..];
        let grouped = [
            ("http.routers.", &mut routers),
            ("http.services.", &mut services),
            ("http.middlewares.", &mut middlewares),
        ]
        .into_iter()
        .find_map(|(prefix, map)| rest.strip_prefix(prefix).map(|r| (r, map)));
        match grouped {
            Some((r, map)) => match r.split_once('.') {
                Some((name, prop)) => {
                    map.entry(name.to_string())
                        .or_default()
                        .insert(prop.to_ascii_lowercase(), *v);
                }
                None => note(
                    &mut out,
                    &v.source,
                    Status::NeedsInput,
                    "-",
                    format!("'{k}' names no property; fix the label"),
                ),
            },
            None if rest == "enable" => {}
            None if rest == "docker.network" || rest == "swarm.network" => note(
                &mut out,
                &v.source,
                Status::Dropped,
                "-",
                "the network Traefik reaches the service on; the Istio gateway reaches the pods directly".into(),
            ),
            None if rest.starts_with("tcp.") || rest.starts_with("udp.") => note(
                &mut out,
                &v.source,
                Status::NeedsInput,
                "-",
                "TCP/UDP routers are not translated (a Gateway TCP server and a VirtualService tcp route); add them by hand".into(),
            ),
            None if rest.starts_with("http.serverstransports.") => note(
                &mut out,
                &v.source,
                Status::Dropped,
                "-",
                "Traefik's transport to the backend; Istio's sidecars manage the connection".into(),
            ),
            None => {
                v1.insert(rest.to_ascii_lowercase(), *v);
            }
        }
    }

    let service_names: Vec<String> = services.keys().cloned().collect();
    let mut ports_of: BTreeMap<String, u32> = BTreeMap::new();
    for (s, props) in &services {
        for (prop, v) in props {
            match prop.as_str() {
                "loadbalancer.server.port" => match v.value.trim().parse::<u32>() {
                    Ok(p) if (1..=65535).contains(&p) => {
                        ports_of.insert(s.clone(), p);
                        note(
                            &mut out,
                            &v.source,
                            Status::Converted,
                            "VirtualService route.destination.port.number",
                            format!("requests for Traefik service '{s}' go to port {p}"),
                        );
                    }
                    _ => note(
                        &mut out,
                        &v.source,
                        Status::NeedsInput,
                        "-",
                        format!("'{}' is not a port number (1-65535)", v.value),
                    ),
                },
                "loadbalancer.sticky.cookie" | "loadbalancer.sticky" => {
                    if v.value.eq_ignore_ascii_case("true") {
                        if out.sticky.is_none() {
                            out.sticky = Some(Sticky {
                                cookie: DEFAULT_COOKIE.into(),
                                source: v.source.clone(),
                            });
                        }
                        note(
                            &mut out,
                            &v.source,
                            Status::Converted,
                            "DestinationRule trafficPolicy.loadBalancer.consistentHash.httpCookie",
                            format!(
                                "sticky sessions: a session cookie pins a client to one pod (named {DEFAULT_COOKIE} unless sticky.cookie.name is set)"
                            ),
                        );
                    } else {
                        note(
                            &mut out,
                            &v.source,
                            Status::Dropped,
                            "-",
                            "sticky sessions are off".into(),
                        );
                    }
                }
                "loadbalancer.sticky.cookie.name" => {
                    out.sticky = Some(Sticky {
                        cookie: v.value.clone(),
                        source: v.source.clone(),
                    });
                    note(
                        &mut out,
                        &v.source,
                        Status::Converted,
                        "DestinationRule consistentHash.httpCookie.name",
                        "the session cookie keeps its name".into(),
                    );
                }
                "loadbalancer.sticky.cookie.secure"
                | "loadbalancer.sticky.cookie.httponly"
                | "loadbalancer.sticky.cookie.samesite" => note(
                    &mut out,
                    &v.source,
                    Status::Dropped,
                    "-",
                    "Envoy sets the cookie without Secure/HttpOnly/SameSite attributes".into(),
                ),
                "loadbalancer.passhostheader" => note(
                    &mut out,
                    &v.source,
                    Status::Converted,
                    "-",
                    "Envoy passes the Host header on, as Traefik does by default".into(),
                ),
                _ => note(
                    &mut out,
                    &v.source,
                    Status::NeedsInput,
                    "-",
                    format!(
                        "Traefik service option '{prop}' is not translated; set the matching Istio DestinationRule field by hand"
                    ),
                ),
            }
        }
    }
    // When a sticky label sets a name, it replaces the default set by `sticky.cookie=true`.
    for props in services.values() {
        if let Some(n) = props.get("loadbalancer.sticky.cookie.name") {
            out.sticky = Some(Sticky {
                cookie: n.value.clone(),
                source: n.source.clone(),
            });
        }
    }

    for (name, props) in &routers {
        let Some(rule) = props.get("rule") else {
            for v in props.values() {
                note(
                    &mut out,
                    &v.source,
                    Status::NeedsInput,
                    "-",
                    format!("router '{name}' has no rule label, so it is not translated"),
                );
            }
            continue;
        };
        let mut router = Router {
            name: name.clone(),
            source: Some(rule.source.clone()),
            ..Router::default()
        };
        let mut ok = true;
        match parse_rule(&rule.value) {
            Ok(m) => {
                router.matches = m;
                note(
                    &mut out,
                    &rule.source,
                    Status::Converted,
                    "Gateway servers.hosts + VirtualService hosts and http.match",
                    "Host → hosts, Path → uri.exact, PathPrefix → uri.prefix, || → one match per branch".into(),
                );
            }
            Err(reason) => {
                ok = false;
                note(
                    &mut out,
                    &rule.source,
                    Status::NeedsInput,
                    "-",
                    format!(
                        "router '{name}' is not routed: {reason}; write its VirtualService match by hand"
                    ),
                );
            }
        }
        // The service: named, or the only one declared, or the container's only port.
        let svc_label = props.get("service");
        let target = svc_label
            .map(|s| {
                s.value
                    .trim_end_matches("@docker")
                    .trim_end_matches("@swarm")
                    .to_string()
            })
            .or_else(|| (service_names.len() == 1).then(|| service_names[0].clone()));
        router.port = match target.as_ref().and_then(|t| ports_of.get(t)) {
            Some(p) => Some(*p),
            None if ports.len() == 1 => Some(ports[0]),
            None => None,
        };
        if let Some(s) = svc_label {
            note(
                &mut out,
                &s.source,
                Status::Converted,
                "VirtualService route.destination",
                "the router's service is this Swarm service's Kubernetes Service".into(),
            );
        }
        for (prop, v) in props {
            match prop.as_str() {
                "rule" | "service" => {}
                "entrypoints" => {
                    router.entrypoints = list(&v.value);
                    note(
                        &mut out,
                        &v.source,
                        Status::Approximated,
                        "Gateway servers.port",
                        "entry points are defined in Traefik's static configuration; the gateway listens on 80 (HTTP) or 443 (HTTPS, when the router has tls)".into(),
                    );
                }
                "tls" => {
                    router.tls = v.value.eq_ignore_ascii_case("true");
                    note(
                        &mut out,
                        &v.source,
                        Status::Converted,
                        "Gateway servers[].tls.mode SIMPLE (port 443)",
                        "TLS is terminated at the ingress gateway with the certificate Secret values.yaml names (istio.gateway.credentialName)".into(),
                    );
                }
                "tls.certresolver" => {
                    router.tls = true;
                    router.cert_resolver = Some(v.value.clone());
                    note(
                        &mut out,
                        &v.source,
                        Status::NeedsInput,
                        "Gateway servers[].tls.credentialName",
                        format!(
                            "Traefik's ACME resolver '{}' has no Istio counterpart: create the certificate Secret (e.g. a cert-manager Certificate) in the ingress gateway's namespace and set istio.gateway.credentialName",
                            v.value
                        ),
                    );
                }
                "tls.domains[0].main" | "tls.domains[0].sans" | "tls.options" => note(
                    &mut out,
                    &v.source,
                    Status::Approximated,
                    "Gateway servers[].tls",
                    "the certificate's names come from the Secret; TLS options keep Istio's defaults".into(),
                ),
                "middlewares" => {
                    let mut refused = false;
                    for m in list(&v.value) {
                        let bare = m.split('@').next().unwrap_or(&m).to_string();
                        match middlewares.get(&bare) {
                            Some(def) => {
                                if let Err(reason) = middleware(&mut router, &bare, def) {
                                    ok = ok && !reason.blocks;
                                    refused = true;
                                    note(&mut out, &v.source, Status::NeedsInput, "-", reason.text);
                                }
                            }
                            None => {
                                refused = true;
                                note(
                                    &mut out,
                                    &v.source,
                                    Status::NeedsInput,
                                    "-",
                                    format!(
                                        "middleware '{m}' is defined outside this service's labels; translate it by hand"
                                    ),
                                );
                            }
                        }
                    }
                    if !refused {
                        note(
                            &mut out,
                            &v.source,
                            Status::Converted,
                            "VirtualService http route",
                            "each middleware is listed under its own label".into(),
                        );
                    }
                }
                "priority" => note(
                    &mut out,
                    &v.source,
                    Status::Approximated,
                    "VirtualService http order",
                    "Istio tries routes in order; routes are written in router name order".into(),
                ),
                _ => note(
                    &mut out,
                    &v.source,
                    Status::NeedsInput,
                    "-",
                    format!("router option '{prop}' is not translated"),
                ),
            }
        }
        if router.port.is_none() && router.redirect.is_none() && ok {
            ok = false;
            note(
                &mut out,
                &rule.source,
                Status::NeedsInput,
                "-",
                format!(
                    "router '{name}' has no destination port: set traefik.http.services.<s>.loadbalancer.server.port (the service has {} ports)",
                    ports.len()
                ),
            );
        }
        if ok {
            out.routers.push(router);
        }
    }

    for (name, props) in &middlewares {
        for (prop, v) in props {
            let kind = prop.split('.').next().unwrap_or("");
            let (status, target, reason) = match kind {
                "stripprefix" => (
                    Status::Converted,
                    "VirtualService http.rewrite.uri",
                    "the matched prefix is rewritten to /".to_string(),
                ),
                "redirectscheme" => (
                    Status::Converted,
                    "VirtualService http.redirect",
                    "a scheme redirect (301 when permanent, else 302)".to_string(),
                ),
                "headers"
                    if prop.starts_with("headers.customrequestheaders.")
                        || prop.starts_with("headers.customresponseheaders.") =>
                {
                    (
                        Status::Converted,
                        "VirtualService http.headers",
                        "headers set on the request or the response".to_string(),
                    )
                }
                "headers" => (
                    Status::NeedsInput,
                    "-",
                    format!(
                        "headers option '{prop}' (security headers, CORS) is not translated; use VirtualService headers.response or corsPolicy"
                    ),
                ),
                "basicauth" | "digestauth" | "forwardauth" => (
                    Status::NeedsInput,
                    "-",
                    format!(
                        "{kind} middleware '{name}': Istio has no {kind}; routers using it are not routed (they would be public). Move authentication into the service or an ext-authz provider (AuthorizationPolicy CUSTOM), then add the route. Its users are not copied into the chart (the annotation holds a redacted digest)"
                    ),
                ),
                _ => (
                    Status::NeedsInput,
                    "-",
                    format!("middleware type '{kind}' is not translated"),
                ),
            };
            note(&mut out, &v.source, status, target, reason);
        }
    }

    // ── v1 ──
    if !v1.is_empty() {
        v1_router(&mut out, &v1, ports);
    }
    out
}

/// A middleware that cannot be applied to a router; `blocks` drops the router.
struct Refusal {
    text: String,
    blocks: bool,
}

fn middleware(
    router: &mut Router,
    name: &str,
    def: &BTreeMap<String, &crate::model::Sourced<String>>,
) -> Result<(), Refusal> {
    let Some(first) = def.keys().next() else {
        return Ok(());
    };
    let kind = first.split('.').next().unwrap_or("").to_string();
    match kind.as_str() {
        "stripprefix" => {
            let prefixes = def
                .get("stripprefix.prefixes")
                .map(|v| list(&v.value))
                .unwrap_or_default();
            let matched: BTreeSet<String> = router
                .matches
                .iter()
                .filter_map(|m| match &m.uri {
                    Some(Uri::Prefix(p)) => Some(p.clone()),
                    _ => None,
                })
                .collect();
            // Istio rewrites the part of the path the match consumed, so the stripped prefix
            // must be the matched one.
            match prefixes.iter().find(|p| matched.contains(*p)) {
                Some(p) if matched.len() == 1 => {
                    router.strip = Some(p.clone());
                    Ok(())
                }
                _ => Err(Refusal {
                    text: format!(
                        "stripprefix '{name}' strips {prefixes:?} but the router matches prefixes {matched:?}: Istio can only rewrite the prefix a route matched; split the router per prefix"
                    ),
                    blocks: true,
                }),
            }
        }
        "redirectscheme" => {
            let scheme = def
                .get("redirectscheme.scheme")
                .map(|v| v.value.to_ascii_lowercase())
                .unwrap_or_else(|| "https".into());
            let permanent = def
                .get("redirectscheme.permanent")
                .is_some_and(|v| v.value.eq_ignore_ascii_case("true"));
            let port = def
                .get("redirectscheme.port")
                .and_then(|v| v.value.parse().ok());
            router.redirect = Some(Redirect {
                scheme,
                code: if permanent { 301 } else { 302 },
                port,
            });
            Ok(())
        }
        "headers" => {
            for (prop, v) in def {
                if let Some(h) = prop.strip_prefix("headers.customrequestheaders.") {
                    router
                        .request_headers
                        .push((h.to_ascii_lowercase(), v.value.clone()));
                } else if let Some(h) = prop.strip_prefix("headers.customresponseheaders.") {
                    router
                        .response_headers
                        .push((h.to_ascii_lowercase(), v.value.clone()));
                }
            }
            Ok(())
        }
        "basicauth" | "digestauth" | "forwardauth" => Err(Refusal {
            text: format!(
                "router '{}' uses {kind} middleware '{name}': not routed, so it does not become public without authentication",
                router.name
            ),
            blocks: true,
        }),
        other => Err(Refusal {
            text: format!(
                "middleware '{name}' ({other}) is not translated; the route is generated without it"
            ),
            blocks: false,
        }),
    }
}

/// v1: `traefik.frontend.rule` (`Host:a,b;PathPrefix:/x`), `traefik.port`,
/// `traefik.frontend.entryPoints`.
fn v1_router(
    out: &mut Routing,
    v1: &BTreeMap<String, &crate::model::Sourced<String>>,
    ports: &[u32],
) {
    let mut router = Router {
        name: "v1".into(),
        ..Router::default()
    };
    let mut ok = true;
    let mut has_rule = false;
    for (k, v) in v1 {
        let (status, target, reason): (Status, &str, String) = match k.as_str() {
            "frontend.rule" => {
                has_rule = true;
                router.source = Some(v.source.clone());
                match parse_v1_rule(&v.value) {
                    Ok((m, strip)) => {
                        router.matches = vec![m];
                        router.strip = strip;
                        (
                            Status::Converted,
                            "Gateway servers.hosts + VirtualService http.match",
                            "Traefik v1 frontend rule: Host → hosts, Path → uri.exact, PathPrefix → uri.prefix, PathPrefixStrip → prefix + rewrite".into(),
                        )
                    }
                    Err(reason) => {
                        ok = false;
                        (
                            Status::NeedsInput,
                            "-",
                            format!("the v1 frontend is not routed: {reason}"),
                        )
                    }
                }
            }
            "port" => match v.value.trim().parse::<u32>() {
                Ok(p) if (1..=65535).contains(&p) => {
                    router.port = Some(p);
                    (
                        Status::Converted,
                        "VirtualService route.destination.port.number",
                        format!("requests go to port {p}"),
                    )
                }
                _ => {
                    ok = false;
                    (
                        Status::NeedsInput,
                        "-",
                        format!("'{}' is not a port number", v.value),
                    )
                }
            },
            "frontend.entrypoints" => {
                router.entrypoints = list(&v.value);
                router.tls = router.entrypoints.iter().any(|e| e == "https");
                (
                    Status::Approximated,
                    "Gateway servers.port",
                    "entry points are defined in Traefik's static configuration; https → 443 with TLS, else 80".into(),
                )
            }
            "backend.loadbalancer.sticky" | "backend.loadbalancer.stickiness" => {
                if v.value.eq_ignore_ascii_case("true") {
                    out.sticky = Some(Sticky {
                        cookie: DEFAULT_COOKIE.into(),
                        source: v.source.clone(),
                    });
                }
                (
                    Status::Converted,
                    "DestinationRule consistentHash.httpCookie",
                    "sticky sessions".into(),
                )
            }
            "docker.network" | "backend" => (
                Status::Dropped,
                "-",
                "Traefik's own wiring; the Istio gateway reaches the pods directly".into(),
            ),
            other => (
                Status::NeedsInput,
                "-",
                format!("Traefik v1 option '{other}' is not translated"),
            ),
        };
        out.notes.push(Note {
            source: v.source.clone(),
            status,
            target: target.to_string(),
            reason,
        });
    }
    if !has_rule {
        return;
    }
    if router.port.is_none() && ports.len() == 1 {
        router.port = Some(ports[0]);
    }
    if router.port.is_none() {
        if let Some(src) = &router.source {
            out.notes.push(Note {
                source: src.clone(),
                status: Status::NeedsInput,
                target: "-".into(),
                reason: "the v1 frontend has no destination port: set traefik.port".into(),
            });
        }
        ok = false;
    }
    if ok {
        out.routers.push(router);
    }
}

/// `a, b,c` → `[a, b, c]`.
fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// A v1 rule: matchers joined by `;` (and), each `Name:arg1,arg2`.
fn parse_v1_rule(rule: &str) -> Result<(Match, Option<String>), String> {
    let mut m = Match::default();
    let mut strip = None;
    for part in rule.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, args) = part
            .split_once(':')
            .ok_or_else(|| format!("'{part}' is not Matcher:value"))?;
        let args = list(args);
        let one = || -> Result<String, String> {
            match args.as_slice() {
                [a] => Ok(a.clone()),
                _ => Err(format!("{name} takes one path here, got {}", args.len())),
            }
        };
        match name.trim() {
            "Host" => m.hosts.extend(args.iter().map(|h| h.to_ascii_lowercase())),
            "Path" => m.uri = Some(Uri::Exact(one()?)),
            "PathPrefix" => m.uri = Some(Uri::Prefix(one()?)),
            "PathPrefixStrip" => {
                let p = one()?;
                strip = Some(p.clone());
                m.uri = Some(Uri::Prefix(p));
            }
            "Method" => m.method = Some(one()?.to_ascii_uppercase()),
            other => {
                return Err(format!(
                    "matcher '{other}' has no Istio counterpart (supported: Host, Path, PathPrefix, PathPrefixStrip, Method)"
                ));
            }
        }
    }
    if m.hosts.is_empty() && m.uri.is_none() {
        return Err("the rule matches nothing (no Host or Path)".into());
    }
    Ok((m, strip))
}

// ── v2 rule expressions ──

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Call(String, Vec<String>),
    And,
    Or,
    Not,
    Open,
    Close,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Call(String, Vec<String>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

fn lex(rule: &str) -> Result<Vec<Tok>, String> {
    let b = rule.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b'\n' => i += 1,
            b'&' if b.get(i + 1) == Some(&b'&') => {
                out.push(Tok::And);
                i += 2;
            }
            b'|' if b.get(i + 1) == Some(&b'|') => {
                out.push(Tok::Or);
                i += 2;
            }
            b'!' => {
                out.push(Tok::Not);
                i += 1;
            }
            b'(' => {
                out.push(Tok::Open);
                i += 1;
            }
            b')' => {
                out.push(Tok::Close);
                i += 1;
            }
            c if c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len() && b[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                let name = rule[start..i].to_string();
                while i < b.len() && b[i] == b' ' {
                    i += 1;
                }
                if b.get(i) != Some(&b'(') {
                    return Err(format!("'{name}' is not followed by '('"));
                }
                i += 1;
                let mut args = Vec::new();
                loop {
                    while i < b.len() && matches!(b[i], b' ' | b',') {
                        i += 1;
                    }
                    match b.get(i) {
                        Some(b')') => {
                            i += 1;
                            break;
                        }
                        Some(&q @ (b'`' | b'"' | b'\'')) => {
                            let start = i + 1;
                            let end = rule[start..]
                                .find(q as char)
                                .ok_or_else(|| format!("unterminated argument of {name}"))?;
                            args.push(rule[start..start + end].to_string());
                            i = start + end + 1;
                        }
                        None => return Err(format!("unterminated argument list of {name}")),
                        _ => {
                            return Err(format!("arguments of {name} must be quoted with ` or \""));
                        }
                    }
                }
                out.push(Tok::Call(name, args));
            }
            c => return Err(format!("unexpected '{}'", c as char)),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.toks.get(self.at) == Some(&Tok::Or) {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.atom()?;
        while self.toks.get(self.at) == Some(&Tok::And) {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<Expr, String> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        match t {
            Some(Tok::Call(n, a)) => Ok(Expr::Call(n, a)),
            Some(Tok::Open) => {
                let e = self.or()?;
                if self.toks.get(self.at) != Some(&Tok::Close) {
                    return Err("missing ')'".into());
                }
                self.at += 1;
                Ok(e)
            }
            Some(Tok::Not) => Err("negation (!) has no Istio match counterpart".into()),
            _ => Err("incomplete expression".into()),
        }
    }
}

/// A v2 rule in disjunctive normal form: one [`Match`] per `||` branch.
/// Whether a label holds credentials: the users (name and password hash) of a Traefik basic or
/// digest auth middleware, v2 (`…basicauth.users`, `…digestauth.users`) or v1
/// (`…frontend.auth.basic`, `…frontend.auth.basic.users`, `…frontend.auth.digest.users`). The
/// chart never carries them: where labels become annotations, their value is a redacted digest.
pub(crate) fn holds_credentials(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.starts_with("traefik.")
        && (k.ends_with(".basicauth.users")
            || k.ends_with(".digestauth.users")
            || k.ends_with("frontend.auth.basic")
            || k.ends_with("frontend.auth.basic.users")
            || k.ends_with("frontend.auth.digest.users"))
}

/// The value a label's annotation holds: the label's, or its redacted digest when the label
/// [holds credentials](holds_credentials).
pub(crate) fn annotation_value(key: &str, value: &str) -> String {
    if holds_credentials(key) {
        crate::emit::redact(value.as_bytes())
    } else {
        value.to_string()
    }
}

pub(crate) fn parse_rule(rule: &str) -> Result<Vec<Match>, String> {
    let mut p = Parser {
        toks: lex(rule)?,
        at: 0,
    };
    let e = p.or()?;
    if p.at != p.toks.len() {
        return Err("unexpected text after the expression".into());
    }
    let dnf = dnf(&e);
    let mut out = Vec::new();
    for conj in dnf {
        let mut m = Match::default();
        for (name, args) in conj {
            let one = |what: &str| -> Result<String, String> {
                match args.as_slice() {
                    [a] => Ok(a.clone()),
                    _ => Err(format!("{what} takes one argument here")),
                }
            };
            match name.as_str() {
                "Host" => {
                    if !m.hosts.is_empty() {
                        return Err("two Host matchers joined by && match no request".into());
                    }
                    m.hosts = args.iter().map(|h| h.to_ascii_lowercase()).collect();
                }
                "Path" | "PathPrefix" => {
                    if m.uri.is_some() {
                        return Err(
                            "two path matchers joined by && cannot be one Istio uri match".into(),
                        );
                    }
                    let p = one(&name)?;
                    if p.contains('{') {
                        return Err(format!(
                            "path '{p}' uses a Traefik regular expression; Istio needs uri.regex written by hand"
                        ));
                    }
                    m.uri = Some(if name == "Path" {
                        Uri::Exact(p)
                    } else {
                        Uri::Prefix(p)
                    });
                }
                "Method" => m.method = Some(one("Method")?.to_ascii_uppercase()),
                "Headers" => match args.as_slice() {
                    [k, v] => m.headers.push((k.to_ascii_lowercase(), v.clone())),
                    _ => return Err("Headers takes a name and a value".into()),
                },
                other => {
                    return Err(format!(
                        "matcher {other}(...) has no Istio counterpart here (supported: Host, Path, PathPrefix, Method, Headers)"
                    ));
                }
            }
        }
        out.push(m);
    }
    Ok(out)
}

type Conj = Vec<(String, Vec<String>)>;

fn dnf(e: &Expr) -> Vec<Conj> {
    match e {
        Expr::Call(n, a) => vec![vec![(n.clone(), a.clone())]],
        Expr::Or(a, b) => {
            let mut l = dnf(a);
            l.extend(dnf(b));
            l
        }
        Expr::And(a, b) => {
            let (l, r) = (dnf(a), dnf(b));
            let mut out = Vec::new();
            for x in &l {
                for y in &r {
                    let mut c = x.clone();
                    c.extend(y.iter().cloned());
                    out.push(c);
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::node::Mark;
    use crate::model::Sourced;

    fn labels(pairs: &[(&str, &str)]) -> StringMap {
        pairs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| {
                (
                    k.to_string(),
                    Sourced::new(
                        v.to_string(),
                        SourceKey::new(
                            Mark {
                                file: "s.yml".into(),
                                line: u32::try_from(i + 1).unwrap_or(0),
                                col: 1,
                            },
                            format!("services.web.deploy.labels.{k}"),
                        ),
                    ),
                )
            })
            .collect()
    }

    fn note<'a>(r: &'a Routing, label: &str) -> &'a Note {
        r.notes
            .iter()
            .find(|n| n.source.path == format!("services.web.deploy.labels.{label}"))
            .unwrap_or_else(|| panic!("no note for {label}: {:?}", r.notes))
    }

    fn prefix(p: &str) -> Option<Uri> {
        Some(Uri::Prefix(p.into()))
    }

    /// Each supported v2 rule form and its matches.
    #[test]
    fn v2_rules_table() {
        let m = |hosts: &[&str], uri: Option<Uri>| Match {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            uri,
            ..Match::default()
        };
        let cases: Vec<(&str, Vec<Match>)> = vec![
            ("Host(`a.example.com`)", vec![m(&["a.example.com"], None)]),
            ("Host(\"A.example.com\")", vec![m(&["a.example.com"], None)]),
            ("Host(`a.com`, `b.com`)", vec![m(&["a.com", "b.com"], None)]),
            ("PathPrefix(`/api`)", vec![m(&[], prefix("/api"))]),
            (
                "Path(`/healthz`)",
                vec![m(&[], Some(Uri::Exact("/healthz".into())))],
            ),
            (
                "Host(`a.com`) && PathPrefix(`/api`)",
                vec![m(&["a.com"], prefix("/api"))],
            ),
            (
                "Host(`a.com`) || Host(`b.com`)",
                vec![m(&["a.com"], None), m(&["b.com"], None)],
            ),
            (
                "Host(`a.com`) && (PathPrefix(`/x`) || PathPrefix(`/y`))",
                vec![m(&["a.com"], prefix("/x")), m(&["a.com"], prefix("/y"))],
            ),
        ];
        for (rule, want) in cases {
            assert_eq!(parse_rule(rule).as_ref(), Ok(&want), "{rule}");
        }
        let with_method = parse_rule("Method(`post`) && Headers(`X-Env`, `dev`)").expect("parses");
        assert_eq!(with_method[0].method.as_deref(), Some("POST"));
        assert_eq!(
            with_method[0].headers,
            [("x-env".to_string(), "dev".to_string())]
        );
    }

    /// Each unsupported v2 form and the reason given.
    #[test]
    fn v2_unsupported_rules_table() {
        for (rule, reason) in [
            (
                "HostRegexp(`{sub:[a-z]+}.a.com`)",
                "HostRegexp(...) has no Istio counterpart",
            ),
            ("!Host(`a.com`)", "negation"),
            ("Query(`a`, `b`)", "Query(...) has no Istio counterpart"),
            (
                "ClientIP(`10.0.0.0/8`)",
                "ClientIP(...) has no Istio counterpart",
            ),
            ("PathPrefix(`/{id:[0-9]+}`)", "regular expression"),
            ("Host(`a.com`) && Host(`b.com`)", "two Host matchers"),
            ("Path(`/a`) && PathPrefix(`/b`)", "two path matchers"),
            ("Host(`a.com`", "unterminated"),
            ("Host(a.com)", "must be quoted"),
            ("Host(`a`) &&", "incomplete"),
            ("(Host(`a`)", "missing ')'"),
        ] {
            let err = parse_rule(rule).expect_err(rule);
            assert!(err.contains(reason), "{rule}: {err}");
        }
    }

    #[test]
    fn router_with_tls_entrypoints_and_service_port() {
        let r = parse(
            &labels(&[
                ("traefik.enable", "true"),
                (
                    "traefik.http.routers.web.rule",
                    "Host(`shop.example.com`) && PathPrefix(`/`)",
                ),
                ("traefik.http.routers.web.entrypoints", "websecure"),
                ("traefik.http.routers.web.tls", "true"),
                ("traefik.http.routers.web.tls.certresolver", "le"),
                ("traefik.http.services.web.loadbalancer.server.port", "8080"),
                ("traefik.docker.network", "proxy"),
            ]),
            &[8080, 9090],
        );
        assert_eq!(r.routers.len(), 1);
        let w = &r.routers[0];
        assert_eq!(w.port, Some(8080));
        assert!(w.tls);
        assert_eq!(w.cert_resolver.as_deref(), Some("le"));
        assert_eq!(w.entrypoints, ["websecure"]);
        assert_eq!(w.hosts(), ["shop.example.com"]);
        assert_eq!(note(&r, "traefik.enable").status, Status::Converted);
        assert_eq!(
            note(&r, "traefik.http.routers.web.rule").status,
            Status::Converted
        );
        assert_eq!(
            note(&r, "traefik.http.routers.web.entrypoints").status,
            Status::Approximated
        );
        assert_eq!(
            note(&r, "traefik.http.routers.web.tls.certresolver").status,
            Status::NeedsInput
        );
        assert_eq!(note(&r, "traefik.docker.network").status, Status::Dropped);
        assert_eq!(
            note(&r, "traefik.http.services.web.loadbalancer.server.port").status,
            Status::Converted
        );
    }

    #[test]
    fn middlewares_stripprefix_redirect_headers() {
        let r = parse(
            &labels(&[
                ("traefik.http.routers.api.rule", "PathPrefix(`/api`)"),
                ("traefik.http.routers.api.middlewares", "strip,hdr@docker"),
                (
                    "traefik.http.middlewares.strip.stripprefix.prefixes",
                    "/api",
                ),
                (
                    "traefik.http.middlewares.hdr.headers.customrequestheaders.X-Env",
                    "prod",
                ),
                (
                    "traefik.http.middlewares.hdr.headers.customresponseheaders.X-Served",
                    "mesh",
                ),
                ("traefik.http.routers.http.rule", "Host(`a.com`)"),
                ("traefik.http.routers.http.middlewares", "tohttps"),
                (
                    "traefik.http.middlewares.tohttps.redirectscheme.scheme",
                    "https",
                ),
                (
                    "traefik.http.middlewares.tohttps.redirectscheme.permanent",
                    "true",
                ),
            ]),
            &[80],
        );
        assert_eq!(r.routers.len(), 2, "{:?}", r.notes);
        let api = r.routers.iter().find(|x| x.name == "api").expect("api");
        assert_eq!(api.strip.as_deref(), Some("/api"));
        assert_eq!(api.request_headers, [("x-env".into(), "prod".into())]);
        assert_eq!(api.response_headers, [("x-served".into(), "mesh".into())]);
        assert_eq!(api.port, Some(80), "the service's only port");
        let http = r.routers.iter().find(|x| x.name == "http").expect("http");
        assert_eq!(
            http.redirect,
            Some(Redirect {
                scheme: "https".into(),
                code: 301,
                port: None
            })
        );
        for l in [
            "traefik.http.middlewares.strip.stripprefix.prefixes",
            "traefik.http.middlewares.tohttps.redirectscheme.scheme",
            "traefik.http.middlewares.hdr.headers.customrequestheaders.X-Env",
        ] {
            assert_eq!(note(&r, l).status, Status::Converted, "{l}");
        }
    }

    #[test]
    fn only_credential_labels_are_flagged() {
        for k in [
            "traefik.http.middlewares.auth.basicauth.users",
            "traefik.http.middlewares.a.digestauth.users",
            "Traefik.HTTP.Middlewares.Auth.BasicAuth.Users",
            "traefik.frontend.auth.basic",
            "traefik.frontend.auth.basic.users",
            "traefik.web.frontend.auth.basic.users",
            "traefik.frontend.auth.digest.users",
        ] {
            assert!(holds_credentials(k), "{k}");
        }
        for k in [
            "traefik.http.middlewares.auth.basicauth.usersfile",
            "traefik.http.middlewares.auth.basicauth.realm",
            "traefik.http.routers.web.rule",
            "traefik.frontend.auth.forward.address",
            "com.example.basicauth.users",
        ] {
            assert!(!holds_credentials(k), "{k}");
        }
    }

    #[test]
    fn basicauth_and_unknown_middlewares_need_input() {
        let r = parse(
            &labels(&[
                ("traefik.http.routers.admin.rule", "Host(`admin.a.com`)"),
                ("traefik.http.routers.admin.middlewares", "auth"),
                (
                    "traefik.http.middlewares.auth.basicauth.users",
                    "u:$$apr1$$x",
                ),
                ("traefik.http.routers.web.rule", "Host(`a.com`)"),
                (
                    "traefik.http.routers.web.middlewares",
                    "limit,elsewhere@file",
                ),
                ("traefik.http.middlewares.limit.ratelimit.average", "100"),
                ("traefik.http.middlewares.sec.headers.stsseconds", "100"),
            ]),
            &[80],
        );
        assert_eq!(r.routers.len(), 1, "admin is not routed");
        assert_eq!(
            r.routers[0].name, "web",
            "ratelimit does not block the route"
        );
        let auth = note(&r, "traefik.http.middlewares.auth.basicauth.users");
        assert_eq!(auth.status, Status::NeedsInput);
        assert!(auth.reason.contains("basicauth"), "{}", auth.reason);
        assert_eq!(
            note(&r, "traefik.http.routers.admin.middlewares").status,
            Status::NeedsInput
        );
        let mw = note(&r, "traefik.http.routers.web.middlewares");
        assert_eq!(mw.status, Status::NeedsInput);
        assert!(
            r.notes
                .iter()
                .filter(|n| n.source.path.ends_with("routers.web.middlewares"))
                .all(|n| n.status == Status::NeedsInput),
            "no converted note beside the refusals"
        );
        assert_eq!(
            note(&r, "traefik.http.middlewares.limit.ratelimit.average").status,
            Status::NeedsInput
        );
        assert!(
            note(&r, "traefik.http.middlewares.sec.headers.stsseconds")
                .reason
                .contains("not translated")
        );
        assert!(r.notes.iter().any(|n| n.reason.contains("elsewhere@file")));
    }

    #[test]
    fn stripprefix_must_match_the_routed_prefix() {
        let r = parse(
            &labels(&[
                ("traefik.http.routers.api.rule", "PathPrefix(`/v1`)"),
                ("traefik.http.routers.api.middlewares", "strip"),
                (
                    "traefik.http.middlewares.strip.stripprefix.prefixes",
                    "/other",
                ),
            ]),
            &[80],
        );
        assert!(r.routers.is_empty());
        assert!(
            r.notes
                .iter()
                .any(|n| n.reason.contains("split the router"))
        );
    }

    #[test]
    fn sticky_cookie_and_unknown_options() {
        let r = parse(
            &labels(&[
                ("traefik.http.routers.web.rule", "Host(`a.com`)"),
                ("traefik.http.services.web.loadbalancer.server.port", "80"),
                (
                    "traefik.http.services.web.loadbalancer.sticky.cookie",
                    "true",
                ),
                (
                    "traefik.http.services.web.loadbalancer.sticky.cookie.name",
                    "sid",
                ),
                (
                    "traefik.http.services.web.loadbalancer.healthcheck.path",
                    "/h",
                ),
                ("traefik.tcp.routers.db.rule", "HostSNI(`*`)"),
            ]),
            &[80, 81],
        );
        assert_eq!(r.sticky.as_ref().map(|s| s.cookie.as_str()), Some("sid"));
        assert_eq!(
            note(
                &r,
                "traefik.http.services.web.loadbalancer.healthcheck.path"
            )
            .status,
            Status::NeedsInput
        );
        assert_eq!(
            note(&r, "traefik.tcp.routers.db.rule").status,
            Status::NeedsInput
        );
        let only_default = parse(
            &labels(&[("traefik.http.services.s.loadbalancer.sticky.cookie", "true")]),
            &[80],
        );
        assert_eq!(
            only_default.sticky.map(|s| s.cookie),
            Some(DEFAULT_COOKIE.to_string())
        );
    }

    #[test]
    fn router_without_port_or_rule_needs_input() {
        let r = parse(
            &labels(&[
                ("traefik.http.routers.a.rule", "Host(`a.com`)"),
                ("traefik.http.routers.b.entrypoints", "web"),
            ]),
            &[80, 81],
        );
        assert!(r.routers.is_empty());
        assert!(
            r.notes
                .iter()
                .any(|n| n.source.path.ends_with("routers.a.rule")
                    && n.status == Status::NeedsInput
                    && n.reason.contains("no destination port")),
            "{:?}",
            r.notes
        );
        assert!(
            note(&r, "traefik.http.routers.b.entrypoints")
                .reason
                .contains("no rule")
        );
    }

    #[test]
    fn disabled_services_are_not_routed() {
        let r = parse(
            &labels(&[
                ("traefik.enable", "false"),
                ("traefik.http.routers.a.rule", "Host(`a.com`)"),
            ]),
            &[80],
        );
        assert!(r.routers.is_empty());
        assert!(r.notes.iter().all(|n| n.status == Status::Dropped));
    }

    /// Each v1 form: supported ones route, unsupported ones need input.
    #[test]
    fn v1_frontend_table() {
        let r = parse(
            &labels(&[
                (
                    "traefik.frontend.rule",
                    "Host:a.com,b.com;PathPrefixStrip:/app",
                ),
                ("traefik.port", "8080"),
                ("traefik.frontend.entryPoints", "http,https"),
                ("traefik.backend.loadbalancer.sticky", "true"),
            ]),
            &[8080, 9000],
        );
        let v1 = &r.routers[0];
        assert_eq!(v1.hosts(), ["a.com", "b.com"]);
        assert_eq!(v1.matches[0].uri, prefix("/app"));
        assert_eq!(v1.strip.as_deref(), Some("/app"));
        assert_eq!(v1.port, Some(8080));
        assert!(v1.tls);
        assert!(r.sticky.is_some());
        assert_eq!(note(&r, "traefik.frontend.rule").status, Status::Converted);
        assert_eq!(note(&r, "traefik.port").status, Status::Converted);
        for (rule, ok) in [
            ("Host:a.com", true),
            ("Path:/x", true),
            ("PathPrefix:/x;Method:GET", true),
            ("HostRegexp:{a:.*}", false),
            ("AddPrefix:/x", false),
            ("Host", false),
        ] {
            let r = parse(
                &labels(&[("traefik.frontend.rule", rule), ("traefik.port", "80")]),
                &[],
            );
            assert_eq!(r.routers.len() == 1, ok, "{rule}: {:?}", r.notes);
            if !ok {
                assert_eq!(
                    note(&r, "traefik.frontend.rule").status,
                    Status::NeedsInput,
                    "{rule}"
                );
            }
        }
        let other = parse(&labels(&[("traefik.frontend.auth.basic", "u:p")]), &[80]);
        assert_eq!(
            note(&other, "traefik.frontend.auth.basic").status,
            Status::NeedsInput
        );
    }
}
