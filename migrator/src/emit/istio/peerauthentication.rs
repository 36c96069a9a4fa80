//! PeerAuthentication: STRICT mutual TLS for the members of each `encrypted` overlay network (the
//! pods carrying its network label), and an optional namespace-wide mode (`--mtls`).

use crate::emit::Cx;
use crate::emit::istio::{SECURITY, resource, template};
use crate::emit::yaml::Yaml;
use crate::report::Status;

/// The objects.
pub(crate) fn objects(cx: &mut Cx<'_>) {
    let mut docs = Vec::new();
    let members: Vec<(String, String)> = cx
        .networks
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (net, label) in members {
        let Some(n) = cx.stack.networks.get(&net) else {
            continue;
        };
        let Some(enc) = n.driver_opts.get("encrypted") else {
            continue;
        };
        let name = cx.name("peerauthentication", &format!("{net}-mtls"));
        cx.find(
            &enc.source,
            None,
            Status::Converted,
            format!("PeerAuthentication {name} (mtls STRICT)"),
            format!("encrypted overlay traffic becomes mutual TLS: the pods on network '{net}' accept only mTLS"),
        );
        let spec = Yaml::map([
            (
                "selector",
                Yaml::map([(
                    "matchLabels",
                    Yaml::map([(label.as_str(), Yaml::str("true"))]),
                )]),
            ),
            ("mtls", Yaml::map([("mode", Yaml::str("STRICT"))])),
        ]);
        docs.push(resource(
            cx,
            SECURITY,
            "PeerAuthentication",
            &name,
            None,
            spec,
        ));
    }
    if !docs.is_empty() {
        template(cx, "istio/peerauthentication.yaml", &docs);
    }
    // The namespace-wide mode is a value: one line in values.yaml turns it on or changes it.
    let name = cx.name("peerauthentication", "default");
    let doc = resource(
        cx,
        SECURITY,
        "PeerAuthentication",
        &name,
        None,
        Yaml::map([(
            "mtls",
            Yaml::map([(
                "mode",
                Yaml::Tpl("{{ .Values.istio.peerAuthentication.mode | quote }}".into()),
            )]),
        )]),
    );
    let mut text =
        String::from("{{- if and .Values.istio.enabled .Values.istio.peerAuthentication.mode }}\n");
    crate::emit::yaml::write(&mut text, &doc, true);
    text.push_str("{{- end }}\n");
    cx.add_file(
        "templates/istio/peerauthentication-namespace.yaml",
        text,
        crate::emit::bundle::MODE_FILE,
    );
}
