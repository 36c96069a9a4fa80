//! Embeds the stack-file JSON schemas when the shared folder is next to the workspace.
//!
//! The schemas are third-party files (docker/cli, compose-spec) and are not copied into the
//! repository: the build looks for `../shared/schemas/` beside the workspace, copies them into
//! `OUT_DIR` and sets `cfg(embedded_schemas)`. Without them the build still succeeds and the loader
//! skips schema validation with a warning. `MIGRATOR_SCHEMA_DIR` overrides the folder.

use std::path::PathBuf;

const SCHEMAS: [&str; 2] = ["docker-cli__config_schema_v3.13.json", "compose-spec.json"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(embedded_schemas)");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    // MIGRATOR_SCHEMA_DIR points elsewhere (packaging, or a build without schemas for tests).
    println!("cargo::rerun-if-env-changed=MIGRATOR_SCHEMA_DIR");
    let dir = match std::env::var_os("MIGRATOR_SCHEMA_DIR") {
        Some(d) => PathBuf::from(d),
        None => manifest
            .join("..")
            .join("..")
            .join("shared")
            .join("schemas"),
    };
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut copied = 0;
    for name in SCHEMAS {
        let src = dir.join(name);
        println!("cargo::rerun-if-changed={}", src.display());
        if src.is_file() && std::fs::copy(&src, out.join(name)).is_ok() {
            copied += 1;
        }
    }
    if copied == SCHEMAS.len() {
        println!("cargo::rustc-cfg=embedded_schemas");
    } else {
        println!(
            "cargo::warning=no stack-file schemas at {}: the loader will skip schema validation",
            dir.display()
        );
    }
}
