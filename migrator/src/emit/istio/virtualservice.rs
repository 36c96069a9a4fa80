//! VirtualService: the ingress routes of a service (from its Traefik routers, bound to its Gateway)
//! and its in-mesh routes (lanes, timeout, retries, fault injection from `x-istio`). With lanes,
//! every route is preceded by one route per lane matching the lane header (and Kitex's
//! `rpc-persist-lane`), and the route without a lane header goes to the stable subset.

use crate::emit::Cx;
use crate::emit::istio::extension::{Extension, istio_duration};
use crate::emit::istio::traefik::{Router, Uri};
use crate::emit::istio::{KITEX_LANE_HEADER, NETWORKING, STABLE, exact, gateway, resource};
use crate::emit::yaml::Yaml;
use crate::model::Service;

/// One `match` entry under construction: its fields and its header matches.
#[derive(Clone, Default)]
struct MatchY {
    fields: Vec<(String, Yaml)>,
    headers: Vec<(String, Yaml)>,
}

impl MatchY {
    fn render(&self) -> Yaml {
        let mut m = self.fields.clone();
        if !self.headers.is_empty() {
            m.push(("headers".into(), Yaml::Map(self.headers.clone())));
        }
        Yaml::Map(m)
    }
}

/// The ingress VirtualService of a service's routers.
pub(crate) fn ingress(
    cx: &mut Cx<'_>,
    svc: &Service,
    name: &str,
    routers: &[Router],
    ext: &Extension,
) -> Yaml {
    let vs_name = cx.name("virtualservice", &format!("{name}-ingress"));
    let gw = cx.name("gateway", &gateway::name(name));
    let mut hosts: Vec<String> = Vec::new();
    let mut any_host = false;
    for r in routers {
        let h = r.hosts();
        any_host |= h.is_empty();
        for x in h {
            if !hosts.contains(&x) {
                hosts.push(x);
            }
        }
    }
    hosts.sort();
    if any_host {
        hosts = vec!["*".into()];
    }
    let ports: std::collections::BTreeSet<u32> = routers.iter().map(gateway::port_of).collect();
    let mut http = Vec::new();
    for r in routers {
        let mut matches = Vec::new();
        for m in &r.matches {
            let mut base = MatchY::default();
            match &m.uri {
                Some(Uri::Exact(p)) => base.fields.push(("uri".into(), exact(p))),
                Some(Uri::Prefix(p)) => base
                    .fields
                    .push(("uri".into(), Yaml::map([("prefix", Yaml::str(p))]))),
                None => {}
            }
            if let Some(meth) = &m.method {
                base.fields.push(("method".into(), exact(meth)));
            }
            for (k, v) in &m.headers {
                base.headers.push((k.clone(), exact(v)));
            }
            if ports.len() > 1 {
                base.fields
                    .push(("port".into(), Yaml::uint(u64::from(gateway::port_of(r)))));
            }
            // A branch that names fewer hosts than the VirtualService matches its own only.
            let mut own = m.hosts.clone();
            own.sort();
            if !own.is_empty() && own != hosts {
                for h in &own {
                    let mut x = base.clone();
                    x.fields.push(("authority".into(), exact(h)));
                    matches.push(x);
                }
            } else {
                matches.push(base);
            }
        }
        if let Some(red) = &r.redirect {
            let mut redirect = vec![
                ("scheme".to_string(), Yaml::str(&red.scheme)),
                ("redirectCode".to_string(), Yaml::uint(u64::from(red.code))),
            ];
            if let Some(p) = red.port {
                redirect.push(("port".into(), Yaml::uint(u64::from(p))));
            }
            let mut route = vec![("name".to_string(), Yaml::str(&r.name))];
            if !matches.is_empty() {
                route.push((
                    "match".into(),
                    Yaml::Seq(matches.iter().map(MatchY::render).collect()),
                ));
            }
            route.push(("redirect".into(), Yaml::Map(redirect)));
            http.push(Yaml::Map(route));
            continue;
        }
        let mut extras = Vec::new();
        if let Some(p) = &r.strip {
            // `rewrite.uri: /` would turn `/api/x` into `//x`; a regex rewrite strips the prefix
            // and one slash after it, and keeps the path absolute, as Traefik's stripprefix does.
            extras.push((
                "rewrite".to_string(),
                Yaml::map([(
                    "uriRegexRewrite",
                    Yaml::map([
                        (
                            "match",
                            Yaml::str(format!("^{}/?", regex_escape(p.trim_end_matches('/')))),
                        ),
                        ("rewrite", Yaml::str("/")),
                    ]),
                )]),
            ));
        }
        let mut headers = Vec::new();
        if !r.request_headers.is_empty() {
            headers.push((
                "request".to_string(),
                Yaml::map([("set", set_map(&r.request_headers))]),
            ));
        }
        if !r.response_headers.is_empty() {
            headers.push((
                "response".to_string(),
                Yaml::map([("set", set_map(&r.response_headers))]),
            ));
        }
        if !headers.is_empty() {
            extras.push(("headers".into(), Yaml::Map(headers)));
        }
        extras.extend(resilience(cx, svc, ext));
        http.extend(routes(cx, svc, name, &r.name, &matches, r.port, &extras));
    }
    let spec = Yaml::map([
        (
            "hosts",
            Yaml::Seq(hosts.into_iter().map(Yaml::Str).collect()),
        ),
        ("gateways", Yaml::Seq(vec![Yaml::Str(gw)])),
        ("http", Yaml::Seq(http)),
    ]);
    resource(cx, NETWORKING, "VirtualService", &vs_name, Some(name), spec)
}

/// The in-mesh VirtualService: only when the service has lanes or `x-istio` resilience settings.
pub(crate) fn mesh(cx: &mut Cx<'_>, svc: &Service, name: &str, ext: &Extension) -> Option<Yaml> {
    let lanes = crate::emit::istio::lanes_for(cx, &svc.name);
    if lanes.is_empty() && ext.timeout.is_none() && ext.retries.is_none() && ext.fault.is_none() {
        return None;
    }
    let vs_name = cx.name("virtualservice", name);
    let extras = resilience(cx, svc, ext);
    let http = routes(cx, svc, name, "default", &[], None, &extras);
    let spec = Yaml::map([
        ("hosts", Yaml::Seq(vec![Yaml::str(name)])),
        ("http", Yaml::Seq(http)),
    ]);
    Some(resource(
        cx,
        NETWORKING,
        "VirtualService",
        &vs_name,
        Some(name),
        spec,
    ))
}

/// `text` as an RE2 literal.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn set_map(h: &[(String, String)]) -> Yaml {
    Yaml::Map(h.iter().map(|(k, v)| (k.clone(), Yaml::str(v))).collect())
}

/// Timeout, retries and (switchable) fault injection of `x-istio`.
fn resilience(cx: &mut Cx<'_>, svc: &Service, ext: &Extension) -> Vec<(String, Yaml)> {
    let mut out = Vec::new();
    if let Some(t) = &ext.timeout {
        out.push(("timeout".into(), Yaml::Str(istio_duration(t))));
    }
    if let Some(r) = &ext.retries {
        let mut m = vec![("attempts".to_string(), Yaml::uint(u64::from(r.attempts)))];
        if let Some(p) = &r.per_try_timeout {
            m.push(("perTryTimeout".into(), Yaml::Str(istio_duration(p))));
        }
        if let Some(on) = &r.retry_on {
            m.push(("retryOn".into(), Yaml::str(on)));
        }
        out.push(("retries".into(), Yaml::Map(m)));
    }
    if let Some(f) = &ext.fault {
        let key = cx.key_of(&svc.name);
        let mut fault = Vec::new();
        if let Some(d) = &f.delay {
            fault.push((
                "delay".to_string(),
                Yaml::map([
                    (
                        "percentage",
                        Yaml::map([("value", Yaml::Tpl(d.percent.to_string()))]),
                    ),
                    ("fixedDelay", Yaml::Str(istio_duration(&d.fixed_delay))),
                ]),
            ));
        }
        if let Some(a) = &f.abort {
            fault.push((
                "abort".to_string(),
                Yaml::map([
                    (
                        "percentage",
                        Yaml::map([("value", Yaml::Tpl(a.percent.to_string()))]),
                    ),
                    ("httpStatus", Yaml::uint(u64::from(a.http_status))),
                ]),
            ));
        }
        out.push((
            String::new(),
            Yaml::Lines(vec![format!(
                "{{{{- if .Values.istio.services.{key}.fault.enabled }}}}"
            )]),
        ));
        out.push(("fault".into(), Yaml::Map(fault)));
        out.push((String::new(), Yaml::Lines(vec!["{{- end }}".into()])));
    }
    out
}

/// The routes for `matches` (empty: every request): one per lane first, matching the lane
/// header, then the stable route.
fn routes(
    cx: &Cx<'_>,
    svc: &Service,
    host: &str,
    route_name: &str,
    matches: &[MatchY],
    port: Option<u32>,
    extras: &[(String, Yaml)],
) -> Vec<Yaml> {
    let lanes = crate::emit::istio::lanes_for(cx, &svc.name);
    let header = cx.plan.lane_header_of(&svc.name);
    let dest = |subset: Option<&str>| {
        let mut d = vec![("host".to_string(), Yaml::str(host))];
        if let Some(p) = port {
            d.push((
                "port".into(),
                Yaml::map([("number", Yaml::uint(u64::from(p)))]),
            ));
        }
        if let Some(s) = subset {
            d.push(("subset".into(), Yaml::str(s)));
        }
        Yaml::Seq(vec![Yaml::map([("destination", Yaml::Map(d))])])
    };
    let mut out = Vec::new();
    for lane in &lanes {
        let base: Vec<MatchY> = if matches.is_empty() {
            vec![MatchY::default()]
        } else {
            matches.to_vec()
        };
        let mut lane_matches = Vec::new();
        let mut names = vec![header.as_str()];
        if header != KITEX_LANE_HEADER {
            names.push(KITEX_LANE_HEADER);
        }
        for m in &base {
            for h in &names {
                let mut x = m.clone();
                x.headers.push((h.to_string(), exact(lane)));
                lane_matches.push(x.render());
            }
        }
        let mut r = vec![
            (
                "name".to_string(),
                Yaml::str(format!("{route_name}-{lane}")),
            ),
            ("match".to_string(), Yaml::Seq(lane_matches)),
            ("route".to_string(), dest(Some(lane))),
        ];
        r.extend(extras.iter().cloned());
        out.push(Yaml::Map(r));
    }
    let mut r = vec![("name".to_string(), Yaml::str(route_name))];
    if !matches.is_empty() {
        r.push((
            "match".into(),
            Yaml::Seq(matches.iter().map(MatchY::render).collect()),
        ));
    }
    r.push(("route".into(), dest((!lanes.is_empty()).then_some(STABLE))));
    r.extend(extras.iter().cloned());
    out.push(Yaml::Map(r));
    out
}
