//! Conformance of the stack loader against its oracle, `docker stack config` (the Go loader behind
//! `docker stack deploy`; client only, no daemon). For every stack under `../shared/fixtures/stacks/`
//! and every case in `tests/fixtures/oracle/`, our normalised model, serialised in docker's shape,
//! must equal docker's output after the same normalisation; where docker rejects a file we must
//! reject it too, naming the same key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// One oracle case: the files (merged in order) and the folder both loaders run from.
struct Case {
    name: String,
    dir: PathBuf,
    files: Vec<String>,
}

/// The environment both loaders see: docker reads the process environment, so both get the same
/// small, explicit map and nothing else.
fn env_map() -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert(
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_default(),
    );
    env.insert(
        "HOME".to_string(),
        std::env::var("HOME").unwrap_or_default(),
    );
    env
}

/// Runs `docker stack config` and returns its output as JSON, or its error text.
fn docker_config(case: &Case) -> Result<Value, String> {
    let docker = e2e::tool("docker").expect("docker");
    let mut cmd = Command::new(docker);
    cmd.arg("stack")
        .arg("config")
        .current_dir(&case.dir)
        .env_clear();
    for (k, v) in env_map() {
        cmd.env(k, v);
    }
    for f in &case.files {
        cmd.arg("-c").arg(f);
    }
    let out = cmd.output().expect("run docker stack config");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(yaml_to_json(&out.stdout))
}

/// Converts docker's YAML to JSON with PyYAML (an independent parser, so our own YAML reader is not
/// its own judge).
fn yaml_to_json(yaml: &[u8]) -> Value {
    let python = e2e::tool("python3").expect("python3");
    let mut child = Command::new(python)
        .args([
            "-c",
            "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn python3");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(yaml).expect("write yaml");
    }
    let out = child.wait_with_output().expect("python3 output");
    assert!(out.status.success(), "PyYAML failed on docker's output");
    serde_json::from_slice(&out.stdout).expect("json from PyYAML")
}

/// Our side: load → model → docker's shape.
fn our_config(case: &Case) -> Result<Value, migrator::Error> {
    let opts = migrator::load::Options {
        files: case.files.iter().map(|f| case.dir.join(f)).collect(),
        dialect: migrator::load::Dialect::Swarm,
        env: env_map(),
    };
    let loaded = migrator::load::load(&opts)?;
    // docker stack config checks neither references nor `file:` sources (docker stack deploy
    // does), so the comparison runs without those checks; bad_input tests cover them.
    let stack = migrator::model::Stack::from_loaded_with(&loaded, migrator::model::Checks::NONE)?;
    Ok(stack.to_compose_json())
}

/// Keys whose values are Go durations; both sides are compared in nanoseconds, since "1m0s" and
/// "60s" are the same value written two ways.
const DURATION_KEYS: &[&str] = &[
    "delay",
    "monitor",
    "window",
    "interval",
    "timeout",
    "start_period",
    "start_interval",
    "stop_grace_period",
];

/// Parses a Go duration ("1h2m3.5s", "500ms", "10us") into nanoseconds.
fn go_duration_ns(s: &str) -> Option<i128> {
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest == "0" {
        return Some(0);
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let n: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        total += n * scale;
        rest = tail;
    }
    Some(total.round() as i128)
}

/// The normalisation applied to both sides before comparing.
fn normalise(v: &mut Value, key: Option<&str>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                normalise(child, Some(k));
            }
        }
        Value::Array(items) => {
            for item in items {
                normalise(item, None);
            }
        }
        Value::String(s) if key.is_some_and(|k| DURATION_KEYS.contains(&k)) => {
            if let Some(ns) = go_duration_ns(s) {
                *v = Value::String(format!("{ns}ns"));
            }
        }
        _ => {}
    }
}

/// The cases: every stack file of the shared fixtures (the multi-file pair also merged), plus the
/// project's own oracle fixtures.
fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    if let Some(shared) = e2e::shared_dir() {
        let stacks = shared.join("fixtures/stacks");
        let manifest: Value = serde_json::from_str(
            &std::fs::read_to_string(stacks.join("manifest.json")).expect("manifest.json"),
        )
        .expect("manifest.json is JSON");
        for entry in manifest.as_array().expect("manifest is a list") {
            let local = entry["local"].as_str().expect("local path");
            if local.ends_with(".golden") {
                continue; // docker/cli's expected model, not a stack file
            }
            let path = stacks.join(local);
            cases.push(Case {
                name: local.to_string(),
                dir: path.parent().expect("folder").to_path_buf(),
                files: vec![file_name(&path)],
            });
        }
        cases.push(Case {
            name: "kompose-multiple-files/first.yaml + second.yaml".into(),
            dir: stacks.join("kompose-multiple-files"),
            files: vec!["first.yaml".into(), "second.yaml".into()],
        });
    } else {
        println!("../shared is absent: skipping the shared-fixture conformance cases");
    }
    let own = e2e::repo_root().join("tests/fixtures/oracle");
    let mut own_files: Vec<PathBuf> = std::fs::read_dir(&own)
        .expect("tests/fixtures/oracle")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    own_files.sort();
    for path in own_files {
        cases.push(Case {
            name: format!("tests/fixtures/oracle/{}", file_name(&path)),
            dir: own.clone(),
            files: vec![file_name(&path)],
        });
    }
    cases.push(Case {
        name: "examples/stacks/shop".into(),
        dir: e2e::repo_root().join("examples/stacks/shop"),
        files: vec!["docker-stack.yml".into()],
    });
    cases
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned()
}

/// The keys docker names when it rejects a file: the last segment of the dotted path it starts its
/// message with (`services.web.deploy.replicas must be a integer` → `replicas`) and the property in
/// `Additional property replicaz is not allowed`.
fn docker_named_keys(docker_err: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for line in docker_err.lines() {
        if let Some(first) = line.split_whitespace().next()
            && first.contains('.')
            && !first.contains('=')
            && let Some(last) = first.rsplit('.').next()
        {
            keys.push(last.to_string());
        }
        if let Some(i) = line.find("Additional property ") {
            let word: String = line[i + "Additional property ".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            keys.push(word);
        }
    }
    keys
}

/// A fixture may declare, in a comment `# oracle-rejects-key: KEY`, the key its rejection is about
/// when docker's message does not name it ("Configuration contains forbidden properties").
fn declared_key(case: &Case) -> Option<String> {
    let text = std::fs::read_to_string(case.dir.join(case.files.first()?)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("# oracle-rejects-key: "))
        .map(|k| k.trim().to_string())
}

#[test]
fn loader_matches_docker_stack_config() {
    if e2e::tool("docker").is_none() || e2e::tool("python3").is_none() {
        println!("skipping: docker CLI or python3 not on PATH (run tests/run to install them)");
        return;
    }
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in cases() {
        let theirs = docker_config(&case);
        let ours = our_config(&case);
        match (theirs, ours) {
            (Ok(mut theirs), Ok(mut ours)) => {
                normalise(&mut theirs, None);
                normalise(&mut ours, None);
                if theirs != ours {
                    failures.push(format!(
                        "{}: differs from docker stack config\n{}",
                        case.name,
                        pretty_assertions::StrComparison::new(
                            &serde_json::to_string_pretty(&theirs).unwrap_or_default(),
                            &serde_json::to_string_pretty(&ours).unwrap_or_default(),
                        )
                    ));
                }
            }
            (Err(docker_err), Err(our_err)) => {
                let ours = our_err.to_string();
                let keys: Vec<String> = docker_named_keys(&docker_err)
                    .into_iter()
                    .chain(declared_key(&case))
                    .collect();
                if keys.is_empty() {
                    failures.push(format!(
                        "{}: docker rejects it ({docker_err}) but neither its message nor the fixture names a key",
                        case.name
                    ));
                }
                for key in keys {
                    if !ours.contains(&key) {
                        failures.push(format!(
                            "{}: docker rejects it naming '{key}' ({}); our error does not name it: {ours}",
                            case.name,
                            docker_err.trim()
                        ));
                    }
                }
            }
            (Ok(_), Err(e)) => failures.push(format!(
                "{}: docker accepts it, we reject it: {e}",
                case.name
            )),
            (Err(e), Ok(_)) => failures.push(format!(
                "{}: docker rejects it ({e}), we accept it",
                case.name
            )),
        }
        compared += 1;
    }
    assert!(compared > 0, "no oracle case ran");
    assert!(
        failures.is_empty(),
        "{} of {compared} cases differ from docker stack config:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    println!("{compared} cases match docker stack config");
}

#[test]
fn go_durations_parse() {
    assert_eq!(go_duration_ns("1m0s"), Some(60_000_000_000));
    assert_eq!(go_duration_ns("1m30s"), Some(90_000_000_000));
    assert_eq!(go_duration_ns("500ms"), Some(500_000_000));
    assert_eq!(go_duration_ns("1h2m3.5s"), Some(3_723_500_000_000));
    assert_eq!(go_duration_ns("ten"), None);
}
