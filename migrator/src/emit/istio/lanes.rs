//! Lanes (swimlanes): the stable Deployment of a service gets `lane`/`version` pod labels (and its
//! selector the `lane` label, so lane Deployments do not overlap it), and each lane gets a copy
//! named `<service>-<lane>` with its own replicas and image tag values. The Kubernetes Service
//! still selects every lane; the DestinationRule subsets pick one by the `lane` label.

use crate::emit::Cx;
use crate::emit::istio::{LANE_LABEL, STABLE, VERSION_LABEL};
use crate::emit::yaml::Yaml;
use crate::model::Service;
use crate::report::Status;

/// The Deployments of a service (the stable one first) and adds the `lanes` values. Without
/// lanes, `workload` is returned unchanged.
pub(crate) fn deployments(
    cx: &mut Cx<'_>,
    svc: &Service,
    key: &str,
    workload: Yaml,
    values: &mut Vec<(String, Yaml)>,
) -> Vec<Yaml> {
    let lanes = cx.plan.lanes_of(&svc.name);
    if lanes.is_empty() {
        return vec![workload];
    }
    let mut stable = workload.clone();
    label(&mut stable, STABLE);
    let mut out = Vec::new();
    let mut lane_values = Vec::new();
    for lane in &lanes {
        let mut copy = workload.clone();
        let name = cx.name("workload", &format!("{}-{lane}", svc.name));
        if let Some(n) = at(&mut copy, &["metadata", "name"]) {
            *n = Yaml::str(&name);
        }
        label(&mut copy, lane);
        let lv = format!("(index .Values.services.{key}.lanes \"{lane}\")");
        if let Some(r) = at(&mut copy, &["spec", "replicas"]) {
            *r = Yaml::Tpl(format!("{{{{ {lv}.replicas }}}}"));
        }
        let tag = format!(".Values.services.{key}.image.tag");
        retag(&mut copy, &tag, &format!("(default {tag} {lv}.tag)"));
        out.push(copy);
        lane_values.push((
            lane.clone(),
            Yaml::Doc(
                format!(
                    "Deployment `{name}` of lane `{lane}` (requests with the lane header go here)."
                ),
                Box::new(Yaml::map([
                    (
                        "replicas",
                        Yaml::Doc("Number of pods.".into(), Box::new(Yaml::Int(1))),
                    ),
                    (
                        "tag",
                        Yaml::Doc(
                            "Image tag of this lane (\"\" = the stable tag).".into(),
                            Box::new(Yaml::str("")),
                        ),
                    ),
                ])),
            ),
        ));
    }
    if let Some(src) = &svc.source {
        cx.find(
            src,
            Some(&svc.name),
            Status::Converted,
            format!("Deployment + lanes {}", lanes.join(", ")),
            format!(
                "the stable Deployment and one per lane ({}), told apart by the `lane` pod label; requests with header {} route to their lane, the others to stable",
                lanes.join(", "),
                cx.plan.lane_header_of(&svc.name)
            ),
        );
    }
    values.push((
        "lanes".into(),
        Yaml::Doc(
            "Lane Deployments (migrate --lanes / x-istio.lanes).".into(),
            Box::new(Yaml::Map(lane_values)),
        ),
    ));
    let mut all = vec![stable];
    all.extend(out);
    all
}

/// Adds the lane labels to the pod template and the lane to the selector.
fn label(workload: &mut Yaml, lane: &str) {
    if let Some(Yaml::Map(m)) = at(workload, &["spec", "selector", "matchLabels"]) {
        m.push((LANE_LABEL.into(), Yaml::str(lane)));
    }
    if let Some(Yaml::Map(m)) = at(workload, &["spec", "template", "metadata", "labels"]) {
        m.push((LANE_LABEL.into(), Yaml::str(lane)));
        m.push((VERSION_LABEL.into(), Yaml::str(lane)));
    }
}

/// The node under a path of mapping keys.
fn at<'y>(node: &'y mut Yaml, path: &[&str]) -> Option<&'y mut Yaml> {
    let Some((first, rest)) = path.split_first() else {
        return Some(node);
    };
    let mut n = node;
    while let Yaml::Doc(_, inner) = n {
        n = inner;
    }
    match n {
        Yaml::Map(m) => m
            .iter_mut()
            .find(|(k, _)| k == first)
            .and_then(|(_, v)| at(v, rest)),
        _ => None,
    }
}

/// Replaces `from` with `to` in every template action below `node` (the image reference).
fn retag(node: &mut Yaml, from: &str, to: &str) {
    match node {
        Yaml::Tpl(s) if s.contains(from) => *s = s.replace(from, to),
        Yaml::Map(m) => m.iter_mut().for_each(|(_, v)| retag(v, from, to)),
        Yaml::Seq(s) => s.iter_mut().for_each(|v| retag(v, from, to)),
        Yaml::Doc(_, inner) => retag(inner, from, to),
        _ => {}
    }
}
