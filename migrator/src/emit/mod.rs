//! Turns the model of a stack into an in-memory bundle: a Helm chart (Chart.yaml, documented
//! values, schema, helpers, one template per object kind per service) with ConfigMaps, Secrets,
//! volumes and NetworkPolicies, plus findings that refine the ledger where the chart decides.

pub mod bundle;
mod chart;
pub mod istio;
pub(crate) mod json;
mod mount;
mod name;
mod network;
mod pod;
mod render;
mod store;
mod workload;
pub mod yaml;

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Error;
use crate::model::{SourceKey, Stack};
use crate::report::{Ledger, Status};

pub use bundle::{Bundle, File, redact};
use yaml::Yaml;

/// Where the values of Swarm secrets go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretMode {
    /// A Secret object per secret, holding the file's content (the template file is mode 0600).
    #[default]
    Inline,
    /// An `ExternalSecret` (external-secrets.io/v1beta1) per secret: the values stay in the
    /// secret store and never enter the chart.
    ExternalSecrets,
}

/// What the chart is generated for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Chart name (already a DNS label; see [`chart_name`]).
    pub name: String,
    /// Namespace written as the default of `namespaceOverride` (empty: the release namespace).
    pub namespace: Option<String>,
    /// Target Kubernetes version as `MAJOR.MINOR` (a Chart.yaml annotation and the chart README;
    /// `kubeVersion` stays `>=1.25.0-0`, the oldest version whose APIs the templates use).
    pub kube_version: (u32, u32),
    /// Where secret values go.
    pub secrets: SecretMode,
    /// A [`bundle::Staging`] folder to write the templates into while the chart is generated
    /// (`Output::staged` lists them; [`Bundle::write_staged`] writes the rest). Their text is
    /// not kept: in `Output::bundle` those files are empty (`Output::staged` has their sizes and
    /// digests; [`Bundle::to_json_staged`] lists them). `None`: the whole chart stays in memory.
    pub stage: Option<std::path::PathBuf>,
}

/// A decision the chart made about one source key, more precise than the classification table
/// (which only sees the input): the ledger entry with the same path takes these values.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The key the finding is about.
    pub source: SourceKey,
    /// The service, if any.
    pub service: Option<String>,
    /// Status.
    pub status: Status,
    /// Kubernetes object and field.
    pub target: String,
    /// Why, and what to do.
    pub reason: String,
}

/// The generated chart and the findings for the ledger.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Output {
    /// The files.
    pub bundle: Bundle,
    /// Decisions that refine the ledger.
    pub findings: Vec<Finding>,
    /// The files already written to [`Options::stage`].
    pub staged: bundle::Staged,
}

/// The chart name for `--name` or the stack: the stack's `name:`, else the first file's folder
/// name, as a DNS label of at most 53 characters (Helm's limit for release-derived names).
pub fn chart_name(
    explicit: Option<&str>,
    stack: &Stack,
    first_file: Option<&std::path::Path>,
) -> String {
    let raw = explicit
        .map(str::to_string)
        .or_else(|| stack.name.as_ref().map(|n| n.value.clone()))
        .or_else(|| {
            first_file
                .and_then(|f| std::path::absolute(f).ok())
                .and_then(|f| {
                    f.parent()
                        .and_then(|p| p.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                })
        })
        .unwrap_or_else(|| "stack".to_string());
    name::dns_label(&raw, 53)
}

/// Generates the chart for `stack`.
pub fn chart(stack: &Stack, opts: &Options) -> Result<Output, Error> {
    chart_with(stack, opts, &istio::Plan::default())
}

/// Generates the chart for `stack` with the mesh objects `plan` asks for (Istio objects, lanes,
/// the bridge's mapping file; see [`istio::Plan`]). An empty plan gives [`chart`]'s output.
pub fn chart_with(stack: &Stack, opts: &Options, plan: &istio::Plan) -> Result<Output, Error> {
    generate(Cx::new(stack, opts, plan)).map(|(output, _)| output)
}

/// One template file as the emitter built it: its path under `templates/` and its documents,
/// with the Helm actions still in place (`diff::render` evaluates them with the default values).
pub type Tree = (String, Vec<Yaml>);

/// [`chart`], plus the document trees of every template (for rendering the chart with its
/// default values in-process; see docs/adr/0006-diff-reports.md).
pub fn chart_with_trees(stack: &Stack, opts: &Options) -> Result<(Output, Vec<Tree>), Error> {
    chart_with_plan_trees(stack, opts, &istio::Plan::default())
}

/// [`chart_with`], plus the document trees of every template.
pub fn chart_with_plan_trees(
    stack: &Stack,
    opts: &Options,
    plan: &istio::Plan,
) -> Result<(Output, Vec<Tree>), Error> {
    let mut cx = Cx::new(stack, opts, plan);
    cx.trees = Some(Vec::new());
    generate(cx)
}

fn generate(mut cx: Cx<'_>) -> Result<(Output, Vec<Tree>), Error> {
    let stack = cx.stack;
    let _span = tracing::info_span!("emit", chart = %cx.opts.name).entered();
    for s in stack.services.keys() {
        cx.key_of(s);
    }
    store::stack_objects(&mut cx)?;
    for (svc_name, svc) in &stack.services {
        let _span = tracing::debug_span!("service", name = %svc_name).entered();
        workload::service(&mut cx, svc)?;
    }
    network::policies(&mut cx);
    istio::objects(&mut cx);
    // values.yaml, its schema and the README are made while the template writer creates the
    // last files (it falls behind on a large chart), then added after the templates.
    cx.deferred = Some(Vec::new());
    chart::files(&mut cx);
    let deferred = cx.deferred.take().unwrap_or_default();
    cx.finish_templates();
    for (path, bytes, mode) in deferred {
        cx.add_file(path, bytes, mode);
    }
    Ok((
        Output {
            bundle: cx.bundle,
            findings: cx.findings,
            staged: cx.staged,
        },
        cx.trees.unwrap_or_default(),
    ))
}

/// Applies findings to the ledger: the entry with the same key path takes the finding's status,
/// target and reason; a finding for a key the ledger does not list is appended.
pub fn refine(ledger: &mut Ledger, findings: &[Finding]) {
    if findings.is_empty() {
        return;
    }
    // Entries by key path: a stack with many services has tens of thousands of entries and can
    // have thousands of findings, too many for a scan per finding.
    let mut by_path: std::collections::HashMap<String, Vec<usize>> =
        std::collections::HashMap::with_capacity(ledger.entries.len());
    for (i, e) in ledger.entries.iter().enumerate() {
        by_path.entry(e.source.path.clone()).or_default().push(i);
    }
    for f in findings {
        match by_path.get(&f.source.path) {
            Some(hits) => {
                for &i in hits {
                    let e = &mut ledger.entries[i];
                    e.status = f.status;
                    e.target = f.target.clone().into();
                    e.reason = f.reason.clone().into();
                }
            }
            None => {
                // A later finding for the same key refines this entry, as for any other.
                by_path
                    .entry(f.source.path.clone())
                    .or_default()
                    .push(ledger.entries.len());
                ledger.entries.push(crate::report::Entry {
                    source: f.source.clone(),
                    service: f.service.clone(),
                    rule: "chart".into(),
                    status: f.status,
                    target: f.target.clone().into(),
                    reason: f.reason.clone().into(),
                });
            }
        }
    }
}

/// The state shared while generating one chart.
pub(crate) struct Cx<'a> {
    pub stack: &'a Stack,
    pub opts: &'a Options,
    /// The mesh objects to generate.
    pub plan: &'a istio::Plan,
    pub bundle: Bundle,
    pub findings: Vec<Finding>,
    /// `values.yaml` top-level sections, in output order.
    pub values: Vec<(String, Yaml)>,
    /// Per-service values blocks by values key.
    pub service_values: Vec<(String, Yaml)>,
    /// Names taken per kind, so two Swarm names that sanitise alike do not collide.
    taken: BTreeMap<&'static str, BTreeSet<String>>,
    /// Values keys of services taken.
    keys: BTreeSet<String>,
    /// Kubernetes object name per (kind, Swarm name).
    pub names: BTreeMap<(&'static str, String), String>,
    /// Networks some service is a member of (network key → label key).
    pub networks: BTreeMap<String, String>,
    /// Services as (workload name, values key, image) for NOTES and README.
    pub summary: Vec<Summary>,
    /// How pods refer to configs, secrets and volumes, by (kind, Swarm key).
    pub refs: BTreeMap<(&'static str, String), store::Ref>,
    /// Values key of each service, allocated up front in name order.
    service_keys: BTreeMap<String, String>,
    /// `persistence` values per service (volumes it owns).
    pub persistence: BTreeMap<String, Vec<(String, Yaml)>>,
    /// The thread that writes templates while the chart is generated.
    renderer: Option<render::Renderer>,
    /// Files added while the template writer is still finishing ([`generate`] makes the chart's
    /// own files meanwhile); added to the bundle after the templates, as if made after them.
    deferred: Option<Vec<(std::path::PathBuf, Vec<u8>, u32)>>,
    /// The template trees, kept only when asked for ([`chart_with_trees`]).
    trees: Option<Vec<Tree>>,
    /// The actions every object's metadata and selector repeat, written once: the labels and
    /// selector-labels includes (as `Yaml::Lines`) and the namespace include.
    labels_include: String,
    selector_include: String,
    namespace_include: String,
    /// The templates the renderer wrote to [`Options::stage`].
    staged: bundle::Staged,
}

/// One service's line in NOTES.txt and the chart README.
pub(crate) struct Summary {
    pub service: String,
    pub name: String,
    pub kind: &'static str,
    pub image: String,
    pub ports: Vec<String>,
}

impl<'a> Cx<'a> {
    fn new(stack: &'a Stack, opts: &'a Options, plan: &'a istio::Plan) -> Self {
        Self {
            stack,
            opts,
            plan,
            bundle: Bundle::default(),
            findings: Vec::new(),
            values: Vec::new(),
            service_values: Vec::new(),
            taken: BTreeMap::new(),
            keys: BTreeSet::new(),
            names: BTreeMap::new(),
            networks: BTreeMap::new(),
            summary: Vec::new(),
            refs: BTreeMap::new(),
            service_keys: BTreeMap::new(),
            persistence: BTreeMap::new(),
            renderer: render::Renderer::start(opts.stage.clone()),
            deferred: None,
            labels_include: format!(
                "{{{{- include \"{}.labels\" . | nindent {{I}} }}}}",
                opts.name
            ),
            selector_include: format!(
                "{{{{- include \"{}.selectorLabels\" . | nindent {{I}} }}}}",
                opts.name
            ),
            namespace_include: format!("{{{{ include \"{}.namespace\" . }}}}", opts.name),
            trees: None,
            staged: bundle::Staged::default(),
        }
    }

    /// Waits for the template writer and adds what it wrote to the bundle.
    fn finish_templates(&mut self) {
        if let Some(r) = self.renderer.take() {
            let (done, staged) = r.finish();
            self.bundle.add_all(
                done.into_iter()
                    .map(|t| (t.path, t.text.into_bytes(), t.mode)),
            );
            self.staged = staged;
        }
    }

    /// Adds a file that is not a template. One added under the path of a template already
    /// written to the staging folder replaces it there too.
    pub fn add_file(
        &mut self,
        path: impl Into<std::path::PathBuf>,
        bytes: impl Into<Vec<u8>>,
        mode: u32,
    ) {
        let path = path.into();
        if let Some(deferred) = &mut self.deferred {
            // Through the template writer, after the templates (its file is written at once);
            // else added after them.
            let bytes = bytes.into();
            let Some(r) = &self.renderer else {
                deferred.push((path, bytes, mode));
                return;
            };
            let Some(p) = path.to_str().map(str::to_string) else {
                deferred.push((path, bytes, mode));
                return;
            };
            let text = match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => {
                    deferred.push((path, e.into_bytes(), mode));
                    return;
                }
            };
            let job = render::Job {
                path: p,
                content: render::Content::Text(text),
                mode,
            };
            if let Err(job) = r.submit(job) {
                deferred.push((path, job.content.into_text().into_bytes(), mode));
            }
            return;
        }
        if path
            .to_str()
            .is_some_and(|p| self.staged.files.remove(p).is_some())
            && let Some(dir) = &self.opts.stage
        {
            // Written again at the end; an error removing it shows up then.
            let _ = std::fs::remove_file(dir.join(&path));
        }
        self.bundle.add(path, bytes, mode);
    }

    /// The Kubernetes name of a Swarm object of `kind` (allocated once, unique per kind).
    pub fn name(&mut self, kind: &'static str, swarm: &str) -> String {
        if let Some(n) = self.names.get(&(kind, swarm.to_string())) {
            return n.clone();
        }
        let base = name::dns_label(swarm, 63);
        let taken = self.taken.entry(kind).or_default();
        let mut n = base.clone();
        let mut i = 2;
        while taken.contains(&n) {
            let suffix = format!("-{i}");
            let mut b = base.clone();
            b.truncate(63 - suffix.len());
            n = format!("{}{suffix}", b.trim_end_matches('-'));
            i += 1;
        }
        taken.insert(n.clone());
        self.names.insert((kind, swarm.to_string()), n.clone());
        n
    }

    /// The values key of a service (allocated on first use; services are allocated in name
    /// order before anything else, so keys do not depend on which object asks first).
    pub fn key_of(&mut self, service: &str) -> String {
        if let Some(k) = self.service_keys.get(service) {
            return k.clone();
        }
        let k = self.service_key(service);
        self.service_keys.insert(service.to_string(), k.clone());
        k
    }

    /// A unique values key for a service.
    fn service_key(&mut self, service: &str) -> String {
        let base = name::values_key(service);
        let mut k = base.clone();
        let mut i = 2;
        while self.keys.contains(&k) {
            k = format!("{base}{i}");
            i += 1;
        }
        self.keys.insert(k.clone());
        k
    }

    /// Records a finding.
    pub fn find(
        &mut self,
        source: &SourceKey,
        service: Option<&str>,
        status: Status,
        target: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.findings.push(Finding {
            source: source.clone(),
            service: service.map(str::to_string),
            status,
            target: target.into(),
            reason: reason.into(),
        });
    }

    /// Adds a template (`templates/<path>`) made of one or more YAML documents. The text is
    /// written on the renderer thread; pass the documents by value to avoid a copy.
    pub fn template(&mut self, path: &str, docs: impl Into<Vec<Yaml>>, secret: bool) {
        let mode = if secret {
            bundle::MODE_SECRET
        } else {
            bundle::MODE_FILE
        };
        let docs: Vec<Yaml> = docs.into();
        if let Some(trees) = &mut self.trees {
            trees.push((path.to_string(), docs.clone()));
        }
        let job = render::Job {
            path: crate::text::cat(&["templates/", path]),
            content: render::Content::Docs(docs),
            mode,
        };
        let job = match &self.renderer {
            Some(r) => match r.submit(job) {
                Ok(()) => return,
                Err(job) => job,
            },
            None => job,
        };
        self.bundle.add(job.path, job.content.into_text(), job.mode);
    }

    /// The helper prefix (`<chart>.`) used in `include`.
    pub fn helper(&self, what: &str) -> String {
        format!("{}.{what}", self.opts.name)
    }

    /// `metadata` of an object: name, namespace and the chart's labels (+ component).
    pub fn metadata(
        &self,
        name: &str,
        component: Option<&str>,
        extra: Vec<(String, Yaml)>,
    ) -> Yaml {
        let mut labels = vec![(
            String::new(),
            Yaml::Lines(vec![self.labels_include.clone()]),
        )];
        if let Some(c) = component {
            labels.push(("app.kubernetes.io/component".into(), Yaml::str(c)));
        }
        let mut m = vec![
            ("name".to_string(), Yaml::str(name)),
            (
                "namespace".to_string(),
                Yaml::Tpl(self.namespace_include.clone()),
            ),
            ("labels".to_string(), Yaml::Map(labels)),
        ];
        m.extend(extra);
        Yaml::Map(m)
    }

    /// The selector labels of a service's pods.
    pub fn selector(&self, component: &str) -> Yaml {
        Yaml::Map(vec![
            (
                String::new(),
                Yaml::Lines(vec![self.selector_include.clone()]),
            ),
            ("app.kubernetes.io/component".into(), Yaml::str(component)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::node::Mark;

    fn key(path: &str) -> SourceKey {
        SourceKey::new(
            Mark {
                file: "s.yml".into(),
                line: 1,
                col: 1,
            },
            path,
        )
    }

    #[test]
    fn findings_replace_matching_entries_and_add_the_others() {
        let mut ledger = Ledger {
            entries: vec![crate::report::Entry {
                source: key("services.a.user"),
                service: Some("a".into()),
                rule: "services.*.user".into(),
                status: Status::Converted,
                target: "t".into(),
                reason: "r".into(),
            }],
        };
        let finding = |path: &str| Finding {
            source: key(path),
            service: Some("a".into()),
            status: Status::NeedsInput,
            target: "runAsUser".into(),
            reason: "give the uid".into(),
        };
        refine(
            &mut ledger,
            &[finding("services.a.user"), finding("services.a.ports")],
        );
        assert_eq!(ledger.entries.len(), 2);
        assert_eq!(ledger.entries[0].status, Status::NeedsInput);
        assert_eq!(ledger.entries[0].rule, "services.*.user", "the rule stays");
        assert_eq!(ledger.entries[1].rule, "chart");
    }

    #[test]
    fn chart_names_are_dns_labels() {
        let stack = Stack::default();
        assert_eq!(chart_name(Some("My_Shop"), &stack, None), "my-shop");
        assert_eq!(
            chart_name(
                None,
                &stack,
                Some(std::path::Path::new("/x/Voting_App/stack.yml"))
            ),
            "voting-app"
        );
        assert_eq!(chart_name(None, &stack, None), "stack");
    }
}
