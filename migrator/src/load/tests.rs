//! Tests of the whole load stage: files on disk in, merged long-syntax tree out, and a comparison
//! with `docker stack config` (the oracle) over the shared fixtures when docker is installed.

use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};

use super::*;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/load")
        .join(rel)
}

/// Every `.yml`/`.yaml` file under ../shared/fixtures/stacks with its text, or `None` (after a
/// line saying so) when ../shared is absent.
pub(super) fn shared_yaml_files() -> Option<Vec<(PathBuf, String)>> {
    let Ok(dirs) = std::fs::read_dir(shared()?) else {
        return None;
    };
    let mut files = Vec::new();
    let mut stack = vec![dirs];
    while let Some(dir) = stack.pop() {
        for e in dir.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(std::fs::read_dir(&p).expect("dir"));
            } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                let text = std::fs::read_to_string(&p).expect("read");
                files.push((p, text));
            }
        }
    }
    Some(files)
}

fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/stacks");
    if p.is_dir() {
        Some(p)
    } else {
        println!("../shared/fixtures/stacks is absent; skipping");
        None
    }
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_json(files: &[PathBuf], dialect: Dialect, e: &[(&str, &str)]) -> (Json, Vec<Warning>) {
    let loaded = load(&Options {
        files: files.to_vec(),
        dialect,
        env: env(e),
    })
    .expect("loads");
    (loaded.root.to_json(), loaded.warnings)
}

#[test]
fn short_syntax_is_normalised_to_long() {
    let dir = fixture("short");
    let loaded = load(&Options {
        files: vec![dir.join("stack.yml")],
        dialect: Dialect::Swarm,
        env: env(&[("HOME", "/root")]),
    })
    .expect("loads");
    let dir_s = loaded.base_dir.display().to_string();
    assert!(!dir_s.contains(".."), "{dir_s}");
    let (got, warnings) = (loaded.root.to_json(), loaded.warnings);
    let web = &got["services"]["web"];
    assert_eq!(web["image"], "nginx:1.25");
    assert_eq!(web["command"], json!(["nginx", "-g", "daemon off;"]));
    assert_eq!(web["entrypoint"], json!(["/entry.sh"]));
    assert_eq!(
        web["environment"],
        json!({"A": "1", "B": "", "C": null, "D": "only-in-file"})
    );
    assert_eq!(web["labels"], json!({"tier": "web", "flag": ""}));
    assert_eq!(
        web["ports"],
        json!([
            {"mode": "ingress", "target": 80, "protocol": "tcp"},
            {"mode": "ingress", "target": 80, "published": 8080, "protocol": "udp"},
            {"mode": "ingress", "target": 9000, "published": 9000, "protocol": "tcp"},
            {"mode": "ingress", "target": 9001, "published": 9001, "protocol": "tcp"},
            {"target": 443, "published": 8443}
        ])
    );
    assert_eq!(
        web["volumes"],
        json!([
            {"type": "volume", "source": "data", "target": "/var/lib/data", "read_only": true},
            {"type": "bind", "source": format!("{dir_s}/conf"), "target": "/etc/conf"},
            {"type": "bind", "source": "/abs", "target": "/abs", "bind": {"propagation": "rshared"}},
            {"type": "volume", "target": "/anon"}
        ])
    );
    assert_eq!(web["secrets"], json!([{"source": "token"}]));
    assert_eq!(web["configs"], json!([{"source": "site"}]));
    assert_eq!(
        web["healthcheck"]["test"],
        json!(["CMD-SHELL", "curl -f http://localhost/"])
    );
    assert_eq!(web["networks"], json!({"front": null, "back": null}));
    assert_eq!(web["extra_hosts"], json!(["api:::1", "db:10.0.0.2"]));
    assert_eq!(web["expose"], json!(["3000", "3001"]));
    assert_eq!(web["dns"], json!(["8.8.8.8"]));
    assert_eq!(web["tmpfs"], json!(["/run"]));
    assert_eq!(web["sysctls"], json!({"net.core.somaxconn": "1024"}));
    assert_eq!(web["deploy"]["labels"], json!({"traefik.enable": "true"}));
    assert_eq!(
        web["logging"]["options"],
        json!({"max-size": "10m", "max-file": "3"})
    );
    assert_eq!(
        got["networks"],
        json!({"front": {}, "back": {"name": "shared-back", "external": true}})
    );
    assert_eq!(got["volumes"], json!({"data": {}}));
    assert_eq!(
        got["secrets"]["token"]["file"],
        json!(format!("{dir_s}/token.txt"))
    );
    assert_eq!(
        got["configs"],
        json!({"site": {"external": true, "name": "site"}})
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.message.contains("ignoring IP-address")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.key_path == "networks.back.external.name"),
        "{warnings:?}"
    );
}

#[test]
fn env_file_entries_keep_their_own_marks() {
    let loaded = load(&Options {
        files: vec![fixture("short/stack.yml")],
        dialect: Dialect::Swarm,
        env: BTreeMap::new(),
    })
    .expect("loads");
    let env = loaded
        .root
        .get("services")
        .and_then(|s| s.get("web"))
        .and_then(|w| w.get("environment"))
        .expect("environment");
    let d = env.entry("D").expect("D");
    assert!(d.key_mark.file.ends_with("app.env"), "{}", d.key_mark);
    assert_eq!(d.key_mark.line, 3);
    let a = env.entry("A").expect("A");
    assert!(a.key_mark.file.ends_with("stack.yml"), "{}", a.key_mark);
}

#[test]
fn dotenv_is_read_only_by_the_compose_dialect() {
    let file = fixture("dotenv/stack.yml");
    let (swarm, warnings) = load_json(std::slice::from_ref(&file), Dialect::Swarm, &[]);
    assert_eq!(swarm["services"]["web"]["image"], "nginx:latest");
    assert_eq!(
        swarm["services"]["web"]["labels"],
        json!({"from-dotenv": "unset", "both": ""})
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.key_path == "services.web.labels.both" && w.message.contains("BOTH")),
        "{warnings:?}"
    );
    let (compose, _) = load_json(
        std::slice::from_ref(&file),
        Dialect::Compose,
        &[("BOTH", "from process env")],
    );
    assert_eq!(compose["services"]["web"]["image"], "nginx:1.25");
    assert_eq!(
        compose["services"]["web"]["labels"],
        json!({"from-dotenv": "yes", "both": "from process env"})
    );
}

#[test]
fn oversized_files_fail_fast_before_parsing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("huge.yml");
    let f = std::fs::File::create(&path).expect("create");
    f.set_len(50 * 1024 * 1024).expect("sparse 50 MB");
    let start = std::time::Instant::now();
    let err = load(&Options {
        files: vec![path],
        ..Options::default()
    })
    .expect_err("too large");
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn errors_carry_file_line_and_key_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let opts = |p: PathBuf| Options {
        files: vec![p],
        ..Options::default()
    };
    let err = load(&opts(write(
        "req.yml",
        "services:\n  web:\n    image: \"app:${TAG:?set TAG}\"\n",
    )))
    .expect_err("required");
    let msg = err.to_string();
    assert!(
        msg.contains("req.yml:3:12") && msg.contains("set TAG"),
        "{msg}"
    );
    assert!(msg.contains("services.web.image"), "{msg}");

    let loaded = load(&opts(write(
        "noimg.yml",
        "services:\n  web:\n    build: .\n",
    )))
    .expect("docker stack config accepts a service without image");
    let err = check_images(&loaded.root).expect_err("docker stack deploy does not");
    assert!(err.to_string().contains("noimg.yml:2:3"), "{err}");
    assert!(err.to_string().contains("services.web.image"), "{err}");

    let err = load(&opts(write(
        "forbid.yml",
        "services:\n  web:\n    image: a\n    volumes_from: [b]\n",
    )))
    .expect_err("forbidden");
    assert!(matches!(err, Error::Forbidden { .. }), "{err}");

    if schema::available() {
        let err = load(&opts(write(
            "port.yml",
            "services:\n  web:\n    image: a\n    ports:\n      - target: 80\n        published: x\n",
        )))
        .expect_err("type");
        let Error::Schema { key_path, mark, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(key_path, "services.web.ports[0].published");
        assert_eq!(mark.line, 6);
    }
    assert!(matches!(load(&Options::default()), Err(Error::NoFiles)));

    let a = write("v1.yml", "version: '3.8'\nservices:\n  a:\n    image: x\n");
    let b = write("v2.yml", "services:\n  b:\n    image: y\n");
    let err = load(&Options {
        files: vec![a, b],
        ..Options::default()
    })
    .expect_err("versions differ");
    assert!(err.to_string().contains("3.8 and 3.13"), "{err}");

    let missing = write(
        "envfile.yml",
        "services:\n  a:\n    image: x\n    env_file: [nope.env]\n",
    );
    let err = load(&opts(missing)).expect_err("missing env file");
    assert!(matches!(err, Error::MissingFile { .. }), "{err}");
    let optional = write(
        "optional.yml",
        "services:\n  a:\n    image: x\n    env_file: [{path: nope.env, required: false}]\n",
    );
    load(&Options {
        files: vec![optional],
        dialect: Dialect::Compose,
        env: BTreeMap::new(),
    })
    .expect("optional env_file may be missing in compose");
}

// ---- oracle: `docker stack config` ----

/// Go `time.ParseDuration` to nanoseconds (test helper for comparing printed durations).
fn go_duration_ns(s: &str) -> Option<i128> {
    if s == "0" {
        return Some(0);
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += num * mult;
        rest = &rest[u..];
    }
    let v = total.round() as i128;
    Some(if neg { -v } else { v })
}

/// docker `units.RAMInBytes`.
fn ram_bytes(s: &str) -> Option<i64> {
    let t = s.trim();
    let n = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let num: f64 = t[..n].parse().ok()?;
    let unit = t[n..].trim().to_ascii_lowercase();
    let unit = unit.trim_end_matches('b').trim_end_matches('i');
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    Some((num * mult) as i64)
}

const DURATION_KEYS: &[&str] = &[
    "interval",
    "timeout",
    "start_period",
    "start_interval",
    "stop_grace_period",
    "delay",
    "monitor",
    "window",
];
const BYTE_KEYS: &[&str] = &["memory", "required_bytes", "limit_bytes"];
/// Maps whose values are user data: their empty values are significant.
const DATA_MAPS: &[&str] = &[
    "environment",
    "labels",
    "args",
    "sysctls",
    "options",
    "driver_opts",
    "networks",
];

/// Brings both sides to one form: durations and byte sizes as numbers, Go's `omitempty` applied
/// (false, "", empty maps and lists dropped, except as values of user-data maps), `version`
/// ignored. `keep` is true for values of a user-data map.
fn canon(v: &Json, key: &str, keep: bool) -> Option<Json> {
    match v {
        Json::Object(m) => {
            let data = DATA_MAPS.contains(&key);
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                if key.is_empty() && k == "version" {
                    continue;
                }
                if let Some(c) = canon(x, k, data) {
                    out.insert(k.clone(), c);
                }
            }
            if out.is_empty() && !keep && !key.is_empty() {
                return None;
            }
            Some(Json::Object(out))
        }
        Json::Array(items) => {
            let out: Vec<Json> = items.iter().filter_map(|i| canon(i, "", true)).collect();
            if out.is_empty() && !keep {
                None
            } else {
                Some(Json::Array(out))
            }
        }
        Json::Bool(false) if !keep => None,
        Json::String(s) if s.is_empty() && !keep => None,
        Json::String(s) if DURATION_KEYS.contains(&key) && !keep => {
            Some(go_duration_ns(s).map_or_else(|| v.clone(), |n| json!(n.to_string())))
        }
        Json::String(s) if BYTE_KEYS.contains(&key) && !keep => {
            Some(ram_bytes(s).map_or_else(|| v.clone(), |n| json!(n)))
        }
        Json::Number(n) if BYTE_KEYS.contains(&key) && !keep => Some(json!(n.as_i64())),
        _ => Some(v.clone()),
    }
}

fn diff(a: &Json, b: &Json, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => diff(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: only ours: {v}")),
                }
            }
            for (k, w) in y {
                if !x.contains_key(k) {
                    out.push(format!("{path}.{k}: only docker: {w}"));
                }
            }
        }
        (Json::Array(x), Json::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                diff(v, w, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: ours {a} docker {b}")),
        _ => {}
    }
}

fn docker_available() -> bool {
    std::process::Command::new("docker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `docker stack config` in `dir` with a fixed environment; `None` when docker rejects it.
fn docker_config(dir: &Path, files: &[&str], e: &BTreeMap<String, String>) -> Option<Json> {
    let mut cmd = std::process::Command::new("docker");
    cmd.current_dir(dir).env_clear().arg("stack").arg("config");
    for f in files {
        cmd.arg("-c").arg(f);
    }
    for (k, v) in e {
        cmd.env(k, v);
    }
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    let out = cmd.output().ok()?;
    if !out.status.success() {
        println!(
            "docker rejected {files:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(parse_str("docker-output", &text).ok()?.to_json())
}

/// Every fixture set, with whether it must match exactly.
const ORACLE_CASES: &[(&str, &[&str])] = &[
    ("kompose-unused-v3", &["docker-compose-full-example.yaml"]),
    ("kompose-unused-v3", &["docker-compose-deploy.yaml"]),
    ("kompose-unused-v3", &["docker-compose-memcpu.yaml"]),
    ("kompose-deploy-placement", &["compose-placement.yaml"]),
    ("kompose-deploy-labels", &["compose.yaml"]),
    ("kompose-controller", &["compose-global.yaml"]),
    (
        "kompose-compose-v3.3-test",
        &["compose-endpoint-mode-1.yaml"],
    ),
    ("kompose-compose-v3.3-test", &["compose-config-long.yaml"]),
    ("kompose-secrets", &["docker-compose-secrets-long.yml"]),
    ("kompose-secrets", &["docker-compose-secrets-short.yml"]),
    ("kompose-healthcheck", &["compose-healthcheck.yaml"]),
    ("kompose-network-policies", &["compose.yaml"]),
    ("kompose-v3.0", &["compose.yaml"]),
    ("kompose-env-dotenv", &["compose.yaml"]),
    ("kompose-envfile-interpolation", &["compose.yaml"]),
    ("kompose-compose-env-interpolation", &["compose.yaml"]),
    ("kompose-multiple-files", &["first.yaml", "second.yaml"]),
    ("kompose-multiple-type-volumes", &["compose.yaml"]),
    ("kompose-statefulset", &["compose.yaml"]),
    ("example-voting-app", &["docker-stack.yml"]),
    ("example-voting-app", &["docker-stack.2020.yml"]),
    ("docker-cli-full-example", &["full-example.yml"]),
];

/// Loads like the Swarm dialect; `load` leaves the `image` rule to the model, as
/// `docker stack config` (unlike `docker stack deploy`) does not enforce it.
fn load_like_stack_config(
    files: Vec<PathBuf>,
    e: &BTreeMap<String, String>,
) -> Result<Json, Error> {
    let opts = Options {
        files,
        dialect: Dialect::Swarm,
        env: e.clone(),
    };
    load(&opts).map(|l| l.root.to_json())
}

#[test]
fn matches_docker_stack_config_on_shared_fixtures() {
    let Some(root) = shared() else { return };
    if !docker_available() {
        println!("docker CLI not found; skipping the oracle comparison");
        return;
    }
    let e = env(&[("HOME", "/root"), ("USER", "root")]);
    let mut mismatched = Vec::new();
    let mut compared = 0;
    for (dir, files) in ORACLE_CASES {
        let dir = root.join(dir);
        let Some(expected) = docker_config(&dir, files, &e) else {
            continue;
        };
        compared += 1;
        let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
        let ours = match load_like_stack_config(paths, &e) {
            Ok(j) => j,
            Err(err) => {
                mismatched.push(format!("{}/{files:?}: we fail: {err}", dir.display()));
                continue;
            }
        };
        let (a, b) = (canon(&ours, "", false), canon(&expected, "", false));
        let mut d = Vec::new();
        diff(
            &a.unwrap_or(Json::Null),
            &b.unwrap_or(Json::Null),
            "",
            &mut d,
        );
        if !d.is_empty() {
            mismatched.push(format!(
                "{}/{files:?}:\n    {}",
                dir.display(),
                d.join("\n    ")
            ));
        }
    }
    for m in &mismatched {
        println!("MISMATCH {m}");
    }
    println!("compared {compared} fixture sets with docker stack config");
    assert!(
        mismatched.is_empty(),
        "{} fixture sets differ",
        mismatched.len()
    );
}

/// Environment of the interpolation fixture (`tests/fixtures/load/interp`).
const INTERP_ENV: &[(&str, &str)] = &[
    ("HOME", "/home/u"),
    ("TAG", "1.25"),
    ("REPLICAS", "3"),
    ("PAR", "2"),
    ("RATIO", "0.5"),
    ("MAXR", "4"),
    ("RO", "yes"),
    ("TTY", "on"),
    ("PLAIN", "p"),
    ("FROM_ENV", "fe"),
    ("EMPTY_TAKES_ENV", "e"),
    ("SET", "s"),
    ("PUB", "8080"),
    ("T", "443"),
    ("PUB2", "8443"),
    ("RETRIES", "5"),
    ("NOFILE", "1024"),
    ("EXT", "true"),
];

/// Fixture folder, files, environment.
type OwnCase<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);

#[test]
fn own_fixtures_match_docker_stack_config() {
    if !docker_available() {
        println!("docker CLI not found; skipping");
        return;
    }
    let home = [("HOME", "/root")];
    let cases: &[OwnCase] = &[
        ("short", &["stack.yml"], &home),
        ("merge", &["base.yml", "override.yml"], &home),
        ("interp", &["stack.yml"], INTERP_ENV),
    ];
    for (dir, files, vars) in cases {
        let e = env(vars);
        let dir = fixture(dir);
        let Some(expected) = docker_config(&dir, files, &e) else {
            panic!("docker rejects our own fixture {files:?}");
        };
        let paths = files.iter().map(|f| dir.join(f)).collect();
        let ours = load_like_stack_config(paths, &e).expect("loads");
        let mut d = Vec::new();
        diff(
            &canon(&ours, "", false).unwrap_or(Json::Null),
            &canon(&expected, "", false).unwrap_or(Json::Null),
            "",
            &mut d,
        );
        assert!(d.is_empty(), "{files:?}:\n{}", d.join("\n"));
    }
}

#[test]
fn interpolation_casts_and_warns() {
    let loaded = load(&Options {
        files: vec![fixture("interp/stack.yml")],
        dialect: Dialect::Swarm,
        env: env(INTERP_ENV),
    })
    .expect("loads");
    let web = loaded.root.to_json()["services"]["web"].clone();
    assert_eq!(web["deploy"]["replicas"], 3);
    assert_eq!(web["deploy"]["update_config"]["max_failure_ratio"], 0.5);
    assert_eq!(web["read_only"], true);
    assert_eq!(web["tty"], true);
    assert_eq!(web["labels"]["c"], "${B:-c}");
    assert_eq!(web["environment"]["ESC"], "$NOT");
    // Every unset variable here has a default: no warning.
    assert!(
        loaded.warnings.iter().all(|w| !w.message.contains("UNSET")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn oracle_canon_keeps_real_differences() {
    let a = json!({"version": "3", "services": {"web": {"image": "a", "read_only": false,
        "healthcheck": {"interval": "60s"}, "environment": {"E": ""}}}});
    let b = json!({"services": {"web": {"image": "a", "healthcheck": {"interval": "1m0s"},
        "environment": {"E": ""}}}});
    let mut d = Vec::new();
    diff(
        &canon(&a, "", false).unwrap_or(Json::Null),
        &canon(&b, "", false).unwrap_or(Json::Null),
        "",
        &mut d,
    );
    assert!(d.is_empty(), "{d:?}");
    let c = json!({"services": {"web": {"image": "b", "healthcheck": {"interval": "1m0s"},
        "environment": {}}}});
    let mut d = Vec::new();
    diff(
        &canon(&a, "", false).unwrap_or(Json::Null),
        &canon(&c, "", false).unwrap_or(Json::Null),
        "",
        &mut d,
    );
    assert_eq!(d.len(), 2, "{d:?}");
}

#[test]
fn deeply_nested_extension_loads_within_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("deep.yml");
    let depth = yaml::MAX_DEPTH - 5;
    let mut doc = String::from("services:\n  web:\n    image: a\nx-deep:\n");
    for i in 0..depth {
        doc.push_str(&" ".repeat(2 + i));
        doc.push_str("a:\n");
    }
    std::fs::write(&p, doc).expect("write");
    let loaded = load(&Options {
        files: vec![p.clone(), p],
        ..Options::default()
    })
    .expect("loads");
    assert!(loaded.root.get("x-deep").is_some());
}

#[test]
fn build_without_schemas_warns_and_still_loads() {
    let loaded = load(&Options {
        files: vec![fixture("short/stack.yml")],
        ..Options::default()
    })
    .expect("loads");
    let warned = loaded
        .warnings
        .iter()
        .any(|w| w.message.contains("no schemas"));
    // Exactly one of the two: schemas embedded, or a warning that says they are not.
    assert_ne!(schema::available(), warned, "{:?}", loaded.warnings);
}

#[test]
fn kompose_multiple_files_merge_like_docker() {
    let Some(root) = shared() else { return };
    let dir = root.join("kompose-multiple-files");
    let loaded = load(&Options {
        files: vec![dir.join("first.yaml"), dir.join("second.yaml")],
        ..Options::default()
    })
    .expect("loads");
    // `docker stack config -c first.yaml -c second.yaml` prints exactly this (version aside).
    assert_eq!(
        loaded.root.to_json(),
        json!({"services": {
            "foo": {"image": "foo", "deploy": {"replicas": 3}},
            "bar": {"image": "bar", "deploy": {"replicas": 99}}
        }})
    );
    // The override keeps the mark of the file it came from.
    let replicas = loaded
        .root
        .at(&[
            Seg::Key("services".into()),
            Seg::Key("bar".into()),
            Seg::Key("deploy".into()),
            Seg::Key("replicas".into()),
        ])
        .expect("replicas");
    assert!(
        replicas.mark.file.ends_with("second.yaml"),
        "{}",
        replicas.mark
    );
    assert_eq!(replicas.mark.line, 4);
}

#[test]
fn dialect_names() {
    assert_eq!("swarm".parse::<Dialect>(), Ok(Dialect::Swarm));
    assert_eq!("compose".parse::<Dialect>(), Ok(Dialect::Compose));
    assert!("kube".parse::<Dialect>().is_err());
    assert_eq!(Dialect::default().to_string(), "swarm");
}

/// A `$` written as a YAML escape is interpolated like a plain one (the loader skips the
/// interpolation walk only for files with neither `$` nor `\`).
#[test]
fn an_escaped_dollar_is_interpolated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("stack.yml");
    std::fs::write(
        &file,
        "version: \"3.8\"\nservices:\n  a:\n    image: \"\\x24{IMG}:1\"\n    environment:\n      PLAIN: x\n",
    )
    .expect("write");
    let (got, _) = load_json(
        std::slice::from_ref(&file),
        Dialect::Swarm,
        &[("IMG", "nginx")],
    );
    assert_eq!(got["services"]["a"]["image"], "nginx:1");
    std::fs::write(
        &file,
        "version: \"3.8\"\nservices:\n  a:\n    image: nginx\n    environment:\n      PLAIN: x\n",
    )
    .expect("write");
    let (got, _) = load_json(&[file], Dialect::Swarm, &[("IMG", "other")]);
    assert_eq!(got["services"]["a"]["image"], "nginx");
    assert_eq!(got["services"]["a"]["environment"]["PLAIN"], "x");
}
