//! The intermediate representation of a stack: typed, normalised (long syntax), with the source key
//! of every value. No YAML or Kubernetes types live here.

mod compose;
pub mod deploy;
mod field;
pub mod object;
pub mod service;
pub mod source;
pub mod unit;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::load::node::{Entry, Node, Value};

pub use deploy::Deploy;
pub use object::{Config, FileObject, Network, Secret, Volume};
pub use service::{Generic, Service};
pub use source::{SourceKey, Sourced};

/// The checks [`Stack::from_root`] runs besides reading the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// Fail with [`Error::MissingFile`] when a secret's or config's `file:` does not exist.
    /// `docker stack config` does not look at the files (only `docker stack deploy` does), so a
    /// comparison with its output turns this off.
    pub files: bool,
    /// Fail with [`Error::UnknownReference`] when a service uses a secret, config, network or
    /// named volume the stack does not declare. `docker stack config` does not check this either
    /// (`docker stack deploy` does), so a comparison with its output turns this off.
    pub references: bool,
    /// Fail when a service has no `image` in the Swarm dialect: `docker stack deploy` refuses it
    /// (`build:` is ignored by Swarm), `docker stack config` does not.
    pub images: bool,
}

impl Checks {
    /// Every check on: what `docker stack deploy` would refuse, we refuse.
    pub const ALL: Checks = Checks {
        files: true,
        references: true,
        images: true,
    };
    /// No checks: accept what `docker stack config` accepts (for comparisons with its output).
    pub const NONE: Checks = Checks {
        files: false,
        references: false,
        images: false,
    };
}

impl Default for Checks {
    fn default() -> Self {
        Self::ALL
    }
}

/// A whole stack: services and the top-level objects they refer to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stack {
    /// The folder relative paths are resolved against (the first stack file's folder).
    pub base_dir: PathBuf,
    /// `version` as written.
    pub version: Option<Sourced<String>>,
    /// `name` (compose dialect: the project name).
    pub name: Option<Sourced<String>>,
    /// `services`, by name.
    pub services: BTreeMap<String, Box<Service>>,
    /// `networks`, by name.
    pub networks: BTreeMap<String, Network>,
    /// `volumes`, by name.
    pub volumes: BTreeMap<String, Volume>,
    /// `secrets`, by name.
    pub secrets: BTreeMap<String, Secret>,
    /// `configs`, by name.
    pub configs: BTreeMap<String, Config>,
    /// Top-level `x-` extension fields.
    pub extensions: BTreeMap<String, Sourced<Generic>>,
    /// Top-level keys outside the schema (compose dialect), untyped.
    pub other: BTreeMap<String, Sourced<Generic>>,
}

/// The entries of a top-level section (`services`, `networks`, …).
fn section(e: &Entry) -> Result<&[Entry], Error> {
    match &e.value.value {
        Value::Map(entries) => Ok(entries.as_slice()),
        Value::Null => Ok(&[]),
        _ => Err(field::invalid(
            &e.value.mark,
            &e.key,
            "expected a mapping of names",
        )),
    }
}

impl Stack {
    /// Builds the model from the loader's result, with all checks on: references to undeclared
    /// secrets, configs, networks and volumes, and `file:` sources that do not exist.
    pub fn from_loaded(loaded: &crate::load::Loaded) -> Result<Self, Error> {
        Self::from_loaded_with(loaded, Checks::ALL)
    }

    /// Builds the model from the loader's result with the given checks.
    pub fn from_loaded_with(loaded: &crate::load::Loaded, checks: Checks) -> Result<Self, Error> {
        if checks.images && loaded.dialect == crate::load::Dialect::Swarm {
            crate::load::check_images(&loaded.root)?;
        }
        Self::from_root(&loaded.root, &loaded.base_dir, checks)
    }

    /// Builds the model from a loaded (merged, interpolated, normalised) tree.
    pub fn from_root(root: &Node, base_dir: &Path, checks: Checks) -> Result<Self, Error> {
        let _span = tracing::debug_span!("model").entered();
        let f = field::Fields::of(root, "")?;
        let mut stack = Stack {
            base_dir: base_dir.to_path_buf(),
            version: f.string("version")?,
            name: f.string("name")?,
            extensions: f.extensions(),
            ..Stack::default()
        };
        for e in f.entries() {
            match e.key.as_str() {
                "version" | "name" => {}
                "services" => {
                    for s in section(e)? {
                        let _span = tracing::debug_span!("service", name = %s.key).entered();
                        stack
                            .services
                            .insert(s.key.clone(), Box::new(Service::read(s)?));
                    }
                }
                "networks" => {
                    for n in section(e)? {
                        stack.networks.insert(n.key.clone(), Network::read(n)?);
                    }
                }
                "volumes" => {
                    for v in section(e)? {
                        stack.volumes.insert(v.key.clone(), Volume::read(v)?);
                    }
                }
                "secrets" => {
                    for s in section(e)? {
                        stack
                            .secrets
                            .insert(s.key.clone(), FileObject::read("secrets", s)?);
                    }
                }
                "configs" => {
                    for c in section(e)? {
                        stack
                            .configs
                            .insert(c.key.clone(), FileObject::read("configs", c)?);
                    }
                }
                k if k.starts_with("x-") => {}
                _ => {
                    if let Some(v) = f.generic(&e.key) {
                        stack.other.insert(e.key.clone(), v);
                    }
                }
            }
        }
        if checks.references {
            stack.check_references()?;
        }
        if checks.files {
            stack.check_files()?;
        }
        Ok(stack)
    }

    /// Every secret, config, network and named volume a service uses must be declared at the top
    /// level (Swarm fails the deploy otherwise).
    fn check_references(&self) -> Result<(), Error> {
        let unknown =
            |source: &SourceKey, kind: &'static str, name: &str| Error::UnknownReference {
                mark: source.mark.clone(),
                key_path: source.path.clone(),
                kind,
                name: name.to_string(),
            };
        for s in self.services.values() {
            for r in &s.secrets {
                if !self.secrets.contains_key(&r.source) {
                    return Err(unknown(&r.source_key, "secret", &r.source));
                }
            }
            for r in &s.configs {
                if !self.configs.contains_key(&r.source) {
                    return Err(unknown(&r.source_key, "config", &r.source));
                }
            }
            for (name, attachment) in &s.networks {
                // Swarm creates the stack's `default` network when a service asks for it.
                if name != "default" && !self.networks.contains_key(name) {
                    return Err(unknown(&attachment.source, "network", name));
                }
            }
            for m in &s.volumes {
                if m.kind == service::MountKind::Volume
                    && let Some(name) = &m.source
                    && !self.volumes.contains_key(name)
                {
                    return Err(unknown(&m.source_key, "volume", name));
                }
            }
        }
        Ok(())
    }

    /// A secret's or config's `file:` must exist (relative to the base directory).
    fn check_files(&self) -> Result<(), Error> {
        for obj in self.secrets.values().chain(self.configs.values()) {
            if obj.is_external() || obj.driver.is_some() {
                continue;
            }
            if let Some(file) = &obj.file {
                let path = self.resolve(&file.value);
                if !path.exists() {
                    return Err(Error::MissingFile {
                        mark: file.source.mark.clone(),
                        key_path: file.source.path.clone(),
                        path,
                    });
                }
            }
        }
        Ok(())
    }

    /// A path from the stack resolved against the base directory (absolute paths unchanged).
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            return p.to_path_buf();
        }
        let mut out = self.base_dir.clone();
        for c in p.components() {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    out.pop();
                }
                other => out.push(other),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
