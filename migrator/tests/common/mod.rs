//! Helpers shared by the chart and Istio integration tests: paths, tools on PATH, and running the
//! `migrate` binary.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A tool on PATH. Outside `tests/run` a missing tool skips (with the reason printed); under it
/// (MESHMOVE_TESTS_RUN set) every tool must be there.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("MESHMOVE_TESTS_RUN").is_none(),
            "{name} is not on PATH although tests/run set it up"
        );
        println!("skipping the {name} checks: {name} is not on PATH (tests/run installs it)");
    }
    found
}

/// Runs the `migrate` binary in `cwd` (no RUST_LOG, so stderr holds only its own messages).
pub fn migrate<S: AsRef<std::ffi::OsStr>>(args: &[S], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_migrate"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .expect("run migrate")
}

/// Bytes as text (lossy).
pub fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Runs `cmd`, which must succeed; returns its stdout.
pub fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `kubernetes-validate --strict` of the rendered manifests in `file` for Kubernetes 1.30 and
/// 1.37; the only lines it may print are about objects without a schema there, which must all
/// hold `schemaless` (a CRD kind or API group the tool does not know).
pub fn kubernetes_validate(validate: &Path, file: &Path, label: &str, schemaless: &str) {
    for version in ["1.30.0", "1.37.0"] {
        let out = run(
            Command::new(validate)
                .args(["--strict", "--quiet", "-k", version])
                .arg(file),
            &format!("{label}: kubernetes-validate --strict -k {version}"),
        );
        for line in out.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                line.contains(schemaless),
                "{label}: kubernetes-validate {version}: {line}"
            );
        }
    }
}
