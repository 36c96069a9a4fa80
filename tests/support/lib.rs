//! Support for the end-to-end tests: locating the repository, the shared folder and the tools that
//! `tests/run` installs. Test doubles (named as such) live beside this file.

use std::path::{Path, PathBuf};

pub mod eureka;
pub mod http;
pub mod kube_api;
pub mod poll;
pub mod process;

/// The repository root (the folder holding the workspace `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// `../shared` next to the repository, when it exists (always in CI). Conformance suites over it
/// print one line and return when it is absent.
pub fn shared_dir() -> Option<PathBuf> {
    // Canonical, so that a `../shared` reached through a symlink reads the same in our paths and
    // in those of tools that resolve their working directory (docker prints absolute paths).
    std::fs::canonicalize(repo_root().join("../shared"))
        .ok()
        .filter(|dir| dir.is_dir())
}

/// True when the tests run under `tests/run`, which installs every tool. Under it nothing may
/// skip: a missing tool is a failure.
pub fn under_tests_run() -> bool {
    std::env::var_os("MESHMOVE_TESTS_RUN").is_some()
}

/// Finds `tool` on PATH. Under `tests/run` a missing tool panics; otherwise the caller gets `None`
/// and must print why it skips.
pub fn tool(tool: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    });
    if found.is_none() && under_tests_run() {
        panic!("{tool} is not on PATH although tests/run should have installed it");
    }
    found
}

#[cfg(test)]
mod tests {
    #[test]
    fn repo_root_holds_the_workspace() {
        let root = super::repo_root();
        let manifest =
            std::fs::read_to_string(root.join("Cargo.toml")).expect("workspace manifest");
        assert!(manifest.contains("[workspace]"));
    }
}
