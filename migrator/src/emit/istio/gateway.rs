//! Gateway: the ingress gateway's servers for a service's routes (port 80 for plain routers, 443
//! with the TLS Secret for `tls` routers), or one server per published port with `--ingress istio`.

use crate::emit::Cx;
use crate::emit::istio::traefik::{Match, Router, Uri};
use crate::emit::istio::{NETWORKING, resource};
use crate::emit::yaml::Yaml;
use crate::model::Service;
use crate::report::Status;

/// The Gateway's name for a service.
pub(crate) fn name(service: &str) -> String {
    format!("{service}-gateway")
}

/// The port a router listens on at the gateway.
pub(crate) fn port_of(r: &Router) -> u32 {
    if let Some(p) = r.published {
        return p;
    }
    if r.tls { 443 } else { 80 }
}

/// The Gateway of a service's routers.
pub(crate) fn object_for(cx: &Cx<'_>, name: &str, routers: &[Router]) -> Yaml {
    let mut by_port: std::collections::BTreeMap<u32, (bool, Vec<String>)> = Default::default();
    for r in routers {
        let hosts = r.hosts();
        let e = by_port.entry(port_of(r)).or_insert((r.tls, Vec::new()));
        if hosts.is_empty() {
            e.1.push("*".into());
        }
        for h in hosts {
            if !e.1.contains(&h) {
                e.1.push(h);
            }
        }
    }
    let servers = by_port
        .into_iter()
        .map(|(port, (tls, mut hosts))| {
            hosts.sort();
            hosts.dedup();
            if hosts.iter().any(|h| h == "*") {
                hosts = vec!["*".into()];
            }
            let (proto, pname) = if tls {
                ("HTTPS", format!("https-{port}"))
            } else {
                ("HTTP", format!("http-{port}"))
            };
            let mut s = vec![
                (
                    "port".to_string(),
                    Yaml::map([
                        ("number", Yaml::uint(u64::from(port))),
                        ("name", Yaml::str(pname)),
                        ("protocol", Yaml::str(proto)),
                    ]),
                ),
                (
                    "hosts".to_string(),
                    Yaml::Seq(hosts.into_iter().map(Yaml::Str).collect()),
                ),
            ];
            if tls {
                s.push((
                    "tls".into(),
                    Yaml::map([
                        ("mode", Yaml::str("SIMPLE")),
                        (
                            "credentialName",
                            Yaml::Tpl("{{ .Values.istio.gateway.credentialName | quote }}".into()),
                        ),
                    ]),
                ));
            }
            Yaml::Map(s)
        })
        .collect();
    let spec = Yaml::map([
        (
            "selector",
            Yaml::map([(
                "",
                Yaml::Lines(vec![
                    "{{- toYaml .Values.istio.gateway.ingressSelector | nindent {I} }}".into(),
                ]),
            )]),
        ),
        ("servers", Yaml::Seq(servers)),
    ]);
    resource(
        cx,
        NETWORKING,
        "Gateway",
        name,
        Some(name.trim_end_matches("-gateway")),
        spec,
    )
}

/// The Gateway of a service.
pub(crate) fn object(cx: &mut Cx<'_>, _svc: &Service, name: &str, routers: &[Router]) -> Yaml {
    let gw = cx.name("gateway", &self::name(name));
    object_for(cx, &gw, routers)
}

/// `--ingress istio`: one catch-all HTTP route per published port (no Traefik labels).
pub(crate) fn published_routers(cx: &mut Cx<'_>, svc: &Service) -> Vec<Router> {
    let mut out = Vec::new();
    for p in &svc.ports {
        let Some(published) = p.published else {
            continue;
        };
        if p.protocol
            .as_deref()
            .is_some_and(|x| !x.eq_ignore_ascii_case("tcp"))
        {
            cx.find(
                &p.source,
                Some(&svc.name),
                Status::NeedsInput,
                "-",
                "--ingress istio: UDP/SCTP ports are not routed by the ingress gateway; expose them with a LoadBalancer Service",
            );
            continue;
        }
        cx.find(
            &p.source,
            Some(&svc.name),
            Status::Approximated,
            format!("Gateway server HTTP port {published} + VirtualService route to port {}", p.target),
            format!(
                "--ingress istio: the published port is served by the ingress gateway as HTTP for any host; the gateway's Service must expose port {published} (for non-HTTP traffic use a TCP server instead)"
            ),
        );
        out.push(Router {
            name: format!("published-{published}"),
            source: Some(p.source.clone()),
            matches: vec![Match {
                uri: Some(Uri::Prefix("/".into())),
                ..Match::default()
            }],
            port: Some(p.target),
            published: Some(published),
            ..Router::default()
        });
    }
    out
}
