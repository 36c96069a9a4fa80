//! The stack's top-level objects: networks, volumes, secrets and configs, with the attributes that
//! decide whether they become Kubernetes objects or must be supplied by a person (`external`).

use std::collections::BTreeMap;

use crate::error::Error;
use crate::load::node::{Entry, Value};
use crate::model::field::{self, Fields, invalid};
use crate::model::service::{Generic, StringMap};
use crate::model::source::{SourceKey, Sourced};

/// `external:` of a top-level object: `true`, or the deprecated `{name: …}` form.
/// `external` as a flag, and the deprecated `external.name`.
type External = (Option<Sourced<bool>>, Option<Sourced<String>>);

fn external(f: &Fields<'_>) -> Result<External, Error> {
    let Some(e) = f.entry("external") else {
        return Ok((None, None));
    };
    let source = f.source(e);
    match &e.value.value {
        Value::Map(_) => {
            let ef = Fields::of(&e.value, &source.path)?;
            Ok((Some(Sourced::new(true, source)), ef.string("name")?))
        }
        _ => Ok((f.boolean("external")?, None)),
    }
}

/// A top-level network (`networks.<name>`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Network {
    /// Where it was declared.
    pub source: Option<SourceKey>,
    /// `name`: the real network name (for external networks, the name in Swarm).
    pub name: Option<Sourced<String>>,
    /// `driver` (`overlay` in Swarm).
    pub driver: Option<Sourced<String>>,
    /// `driver_opts` (`encrypted` turns on IPsec between nodes).
    pub driver_opts: StringMap,
    /// `ipam.driver`.
    pub ipam_driver: Option<Sourced<String>>,
    /// `ipam.config[].subnet`.
    pub ipam_subnets: Vec<Sourced<String>>,
    /// Whether `ipam` was written at all.
    pub ipam: Option<SourceKey>,
    /// `external`.
    pub external: Option<Sourced<bool>>,
    /// `internal`.
    pub internal: Option<Sourced<bool>>,
    /// `attachable`.
    pub attachable: Option<Sourced<bool>>,
    /// `labels`.
    pub labels: StringMap,
    /// `x-` extension fields.
    pub extensions: BTreeMap<String, Sourced<Generic>>,
}

impl Network {
    /// Whether traffic on this network is encrypted (`driver_opts.encrypted` present).
    pub fn encrypted(&self) -> bool {
        self.driver_opts.contains_key("encrypted")
    }

    /// Whether the network already exists outside the stack.
    pub fn is_external(&self) -> bool {
        self.external.as_ref().is_some_and(|e| e.value)
    }

    pub(crate) fn read(entry: &Entry) -> Result<Self, Error> {
        let path = field::join("networks", &entry.key);
        let f = Fields::of(&entry.value, &path)?;
        let (external, external_name) = external(&f)?;
        let (ipam, ipam_driver, ipam_subnets) = match f.sub("ipam")? {
            Some((i, source)) => {
                let mut subnets = Vec::new();
                if let Some(c) = i.entry("config")
                    && let Value::Seq(items) = &c.value.value
                {
                    for (n, item) in items.iter().enumerate() {
                        let p = format!("{}[{n}]", i.path_of("config"));
                        let cf = Fields::of(item, &p)?;
                        if let Some(s) = cf.string("subnet")? {
                            subnets.push(s);
                        }
                    }
                }
                (Some(source), i.string("driver")?, subnets)
            }
            None => (None, None, Vec::new()),
        };
        Ok(Network {
            source: Some(SourceKey::new(entry.key_mark.clone(), path)),
            name: f.string("name")?.or(external_name),
            driver: f.string("driver")?,
            driver_opts: f.string_map("driver_opts")?,
            ipam_driver,
            ipam_subnets,
            ipam,
            external,
            internal: f.boolean("internal")?,
            attachable: f.boolean("attachable")?,
            labels: f.string_map("labels")?,
            extensions: f.extensions(),
        })
    }
}

/// A top-level volume (`volumes.<name>`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Volume {
    /// Where it was declared.
    pub source: Option<SourceKey>,
    /// `name`: the real volume name.
    pub name: Option<Sourced<String>>,
    /// `driver`.
    pub driver: Option<Sourced<String>>,
    /// `driver_opts`.
    pub driver_opts: StringMap,
    /// `external`.
    pub external: Option<Sourced<bool>>,
    /// `labels`.
    pub labels: StringMap,
    /// `x-cluster-spec` (Swarm CSI cluster volume), untyped.
    pub cluster_spec: Option<Sourced<Generic>>,
    /// `x-` extension fields other than `x-cluster-spec`.
    pub extensions: BTreeMap<String, Sourced<Generic>>,
}

impl Volume {
    /// Whether the volume already exists outside the stack.
    pub fn is_external(&self) -> bool {
        self.external.as_ref().is_some_and(|e| e.value)
    }

    pub(crate) fn read(entry: &Entry) -> Result<Self, Error> {
        let path = field::join("volumes", &entry.key);
        let f = Fields::of(&entry.value, &path)?;
        let (external, external_name) = external(&f)?;
        let mut extensions = f.extensions();
        let cluster_spec = extensions.remove("x-cluster-spec");
        Ok(Volume {
            source: Some(SourceKey::new(entry.key_mark.clone(), path)),
            name: f.string("name")?.or(external_name),
            driver: f.string("driver")?,
            driver_opts: f.string_map("driver_opts")?,
            external,
            labels: f.string_map("labels")?,
            cluster_spec,
            extensions,
        })
    }
}

/// A top-level secret or config (`secrets.<name>`, `configs.<name>`): same shape, configs just
/// never have a `driver`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileObject {
    /// Where it was declared.
    pub source: Option<SourceKey>,
    /// `name`: the real object name.
    pub name: Option<Sourced<String>>,
    /// `file`: the content's path as the loader gives it (relative paths are relative to the
    /// stack's base directory).
    pub file: Option<Sourced<String>>,
    /// `external`.
    pub external: Option<Sourced<bool>>,
    /// `labels`.
    pub labels: StringMap,
    /// `driver` (secrets only: a secret store plugin).
    pub driver: Option<Sourced<String>>,
    /// `driver_opts` (secrets only).
    pub driver_opts: StringMap,
    /// `template_driver` (`golang`: the content is a Go template rendered per task).
    pub template_driver: Option<Sourced<String>>,
    /// `x-` extension fields.
    pub extensions: BTreeMap<String, Sourced<Generic>>,
}

/// A top-level secret.
pub type Secret = FileObject;

/// A top-level config.
pub type Config = FileObject;

impl FileObject {
    /// Whether the object already exists in the Swarm (its value is not in the stack).
    pub fn is_external(&self) -> bool {
        self.external.as_ref().is_some_and(|e| e.value)
    }

    pub(crate) fn read(section: &str, entry: &Entry) -> Result<Self, Error> {
        let path = field::join(section, &entry.key);
        let f = Fields::of(&entry.value, &path)?;
        if !matches!(entry.value.value, Value::Map(_)) {
            return Err(invalid(
                &entry.value.mark,
                &path,
                "expected a mapping with file: or external: true",
            ));
        }
        let (external, external_name) = external(&f)?;
        Ok(FileObject {
            source: Some(SourceKey::new(entry.key_mark.clone(), path)),
            name: f.string("name")?.or(external_name),
            file: f.string("file")?,
            external,
            labels: f.string_map("labels")?,
            driver: f.string("driver")?,
            driver_opts: f.string_map("driver_opts")?,
            template_driver: f.string("template_driver")?,
            extensions: f.extensions(),
        })
    }
}
