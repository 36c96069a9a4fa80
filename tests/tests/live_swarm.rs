//! `migrate --from-swarm` against a real Swarm: a private dockerd (tests/support/dockerd.rs) runs
//! `docker stack deploy` of the example voting app (images retagged to a local busybox image,
//! `replicas: 0`, so no container runs and no traffic leaves the machine) and of a stack that uses
//! most of a service spec; the chart read back from the Swarm must equal the chart of the file,
//! except for the differences documented in docs/live-swarm.md, each undone by name below.
//! The error messages for a daemon that is not a manager, one that is unreachable and an unknown
//! stack are checked against the same daemon.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e::dockerd::{self, Dockerd};
use pretty_assertions::assert_eq;

/// The local image every service runs (made with `docker import`; nothing is pulled).
const IMAGE: &str = "local/busybox:1";

const MIGRATE_TIMEOUT: Duration = Duration::from_secs(120);

/// Builds `migrate` (a no-op when it is fresh) and returns its path; the binary of another package
/// has no `CARGO_BIN_EXE_*` here.
fn migrate_bin() -> PathBuf {
    let mut cargo = Command::new(env!("CARGO"));
    cargo.current_dir(e2e::repo_root()).args([
        "build",
        "--locked",
        "-p",
        "migrator",
        "--bin",
        "migrate",
        "--message-format=json-render-diagnostics",
    ]);
    let out = dockerd::run(cargo, "cargo build --bin migrate", Duration::from_secs(900))
        .expect("build migrate");
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "migrate")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the migrate executable")
}

/// The voting app's stack file with every image replaced by [`IMAGE`] and every service at
/// `replicas: 0` (an existing `deploy:` holding only `replicas` is replaced).
fn voting_copy(original: &str) -> String {
    let lines: Vec<&str> = original.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if trimmed.starts_with("image: ") {
            out.push(format!("{indent}image: {IMAGE}"));
            out.push(format!("{indent}deploy:"));
            out.push(format!("{indent}  replicas: 0"));
        } else if trimmed == "deploy:"
            && lines
                .get(i + 1)
                .is_some_and(|n| n.trim_start().starts_with("replicas: "))
            && lines.get(i + 2).is_none_or(|n| {
                let t = n.trim_start();
                t.is_empty() || n.len() - t.len() <= indent.len()
            })
        {
            i += 2;
            continue;
        } else {
            out.push(line.to_string());
        }
        i += 1;
    }
    out.join("\n") + "\n"
}

/// Every file of a chart folder by relative path.
fn chart(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).expect("read chart dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("under root");
                let text = std::fs::read_to_string(&p).expect("chart files are text");
                out.insert(rel.to_string_lossy().into_owned(), text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Documented difference 1: a service's origin comment names the stack file and line for file
/// input (`(docker-stack.yml:16)`) and the Swarm object for live input (`(swarm:service/voting_db:Spec)`).
fn without_origins(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = ["(docker-stack.yml:", "(swarm:service/"]
            .iter()
            .filter_map(|m| rest.find(m))
            .min();
        let Some(start) = next else {
            out.push_str(rest);
            return out;
        };
        let Some(len) = rest[start..].find(')') else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..start]);
        out.push_str("(ORIGIN)");
        rest = &rest[start + len + 1..];
    }
}

/// Documented difference 2: a config's data key is its file's name for file input and the stack
/// key for live input (Swarm does not keep the file name). Renames the live chart's key `key` to
/// `file_name` for config map `cm`.
fn config_key_as_file_name(
    chart: BTreeMap<String, String>,
    cm: &str,
    key: &str,
    file_name: &str,
) -> BTreeMap<String, String> {
    let from = format!("files/configs/{cm}/{key}");
    let to = format!("files/configs/{cm}/{file_name}");
    chart
        .into_iter()
        .map(|(path, text)| {
            let path = if path == from { to.clone() } else { path };
            let text = text
                .replace(&format!("\"{from}\""), &format!("\"{to}\""))
                .replace(
                    &format!("\n  {key}: {{{{"),
                    &format!("\n  {file_name}: {{{{"),
                )
                .replace(&format!("- key: {key}\n"), &format!("- key: {file_name}\n"));
            (path, text)
        })
        .collect()
}

fn normalised(chart: BTreeMap<String, String>) -> BTreeMap<String, String> {
    chart
        .into_iter()
        .map(|(p, t)| (p, without_origins(&t)))
        .collect()
}

/// The same files with the same text, compared file by file so a failure shows a short diff.
fn assert_same_chart(from_file: &BTreeMap<String, String>, from_swarm: &BTreeMap<String, String>) {
    assert_eq!(
        from_file.keys().collect::<Vec<_>>(),
        from_swarm.keys().collect::<Vec<_>>(),
        "chart files"
    );
    for (path, text) in from_file {
        assert_eq!(text, &from_swarm[path], "{path} differs");
    }
}

/// Runs `migrate ARGS`; returns (exit code, stdout, stderr).
fn migrate(bin: &Path, args: &[&str], docker_host: Option<&str>) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(bin);
    cmd.args(args).env_remove("DOCKER_HOST");
    if let Some(h) = docker_host {
        cmd.env("DOCKER_HOST", h);
    }
    dockerd::run_status(cmd, &format!("migrate {}", args.join(" ")), MIGRATE_TIMEOUT)
        .expect("migrate runs")
}

fn ok(res: (Option<i32>, String, String)) -> String {
    assert_eq!(res.0, Some(0), "migrate failed:\n{}\n{}", res.2, res.1);
    res.1
}

#[test]
fn swarm_read_back_converts_like_the_deployed_file() {
    let Some(shared) = e2e::shared_dir() else {
        println!("skipped: ../shared (the voting app stack) is absent");
        return;
    };
    if let Some(why) = dockerd::unavailable() {
        assert!(
            !e2e::under_tests_run(),
            "{why}, although tests/run should have installed docker.io and busybox-static as root"
        );
        println!("skipped: {why} (tests/run installs docker.io and busybox-static)");
        return;
    }
    let bin = migrate_bin();
    let mut d = Dockerd::start().expect("dockerd starts");
    let dir = d.dir().to_path_buf();
    let pid = d.pid();
    let host = d.host();
    let out = |name: &str| dir.join(name).to_string_lossy().into_owned();

    // A daemon outside a Swarm is refused with what to do.
    let (code, _, err) = migrate(
        &bin,
        &["--from-swarm", "--docker-host", &host, "-o", &out("none")],
        None,
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("is not a Swarm manager") && err.contains("--docker-host"),
        "{err}"
    );
    // Nothing listens on a socket that does not exist.
    let missing = format!("unix://{}", dir.join("missing.sock").display());
    let (code, _, err) = migrate(
        &bin,
        &[
            "--from-swarm",
            "--docker-host",
            &missing,
            "-o",
            &out("none"),
        ],
        None,
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("cannot reach the Docker daemon") && err.contains("Start dockerd"),
        "{err}"
    );

    // A user who may not open the socket (here: not even enter its folder) is told what to do.
    if let Some(setpriv) = e2e::tool("setpriv") {
        let mut cmd = Command::new(setpriv);
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(["--from-swarm", "--docker-host", &host, "--dry-run"])
            .env_remove("DOCKER_HOST");
        let (code, _, err) =
            dockerd::run_status(cmd, "migrate as nobody", MIGRATE_TIMEOUT).expect("setpriv");
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains("permission denied on the Docker socket")
                && err.contains("`docker` group"),
            "{err}"
        );
    }

    d.swarm_init().expect("swarm init");
    d.import_busybox(IMAGE).expect("docker import");

    // --- The voting app, as the issue asks.
    let original =
        std::fs::read_to_string(shared.join("fixtures/stacks/example-voting-app/docker-stack.yml"))
            .expect("voting app stack");
    let copy = dir.join("voting/docker-stack.yml");
    std::fs::create_dir_all(copy.parent().expect("parent")).expect("mkdir");
    std::fs::write(&copy, voting_copy(&original)).expect("write copy");
    // The copy is the same stack apart from images and replicas.
    let load = |p: &Path| {
        let loaded = migrator::load::load(&migrator::load::Options {
            files: vec![p.to_path_buf()],
            ..Default::default()
        })
        .expect("load");
        migrator::model::Stack::from_loaded_with(&loaded, migrator::model::Checks::NONE)
            .expect("model")
    };
    let (before, after) = (
        load(&shared.join("fixtures/stacks/example-voting-app/docker-stack.yml")),
        load(&copy),
    );
    assert_eq!(
        before.services.keys().collect::<Vec<_>>(),
        after.services.keys().collect::<Vec<_>>()
    );
    for s in after.services.values() {
        assert_eq!(s.image.as_ref().map(|i| i.value.as_str()), Some(IMAGE));
        let replicas = s.deploy.as_ref().and_then(|d| d.replicas.as_ref());
        assert_eq!(replicas.map(|r| r.value), Some(0), "{}", s.name);
    }
    d.stack_deploy(&copy, "voting")
        .expect("stack deploy voting");

    let copy_arg = copy.to_string_lossy().into_owned();
    ok(migrate(
        &bin,
        &[&copy_arg, "--name", "voting", "-o", &out("voting-file")],
        None,
    ));
    // DOCKER_HOST is the default daemon.
    ok(migrate(
        &bin,
        &[
            "--from-swarm",
            "--stack",
            "voting",
            "-o",
            &out("voting-swarm"),
        ],
        Some(&host),
    ));
    let from_file = chart(&dir.join("voting-file"));
    let from_swarm = chart(&dir.join("voting-swarm"));
    assert!(from_file.keys().any(|k| k.ends_with("db-deployment.yaml")));
    // Documented differences in this stack: the origin comments only.
    assert_ne!(from_file, from_swarm, "the origin comments differ");
    assert_same_chart(&normalised(from_file), &normalised(from_swarm));

    // The ledger's source keys point at the Swarm objects and fields.
    let json = ok(migrate(
        &bin,
        &[
            "--from-swarm",
            "--docker-host",
            &host,
            "--stack",
            "voting",
            // The full ledger is printed when the chart is written (--dry-run prints the diff
            // report, whose JSON carries only the ledger summary).
            "-o",
            &out("ledger-voting"),
            "--format",
            "json",
        ],
        None,
    ));
    let doc: serde_json::Value = serde_json::from_str(&json).expect("json ledger");
    let source_of = |path: &str| {
        doc["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .find(|e| e["source"]["path"] == path)
            .map(|e| e["source"]["file"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(
        source_of("services.db.environment").as_deref(),
        Some("swarm:service/voting_db:Spec.TaskTemplate.ContainerSpec.Env")
    );
    assert_eq!(
        source_of("services.vote.ports[0]").as_deref(),
        Some("swarm:service/voting_vote:Spec.EndpointSpec.Ports[0]")
    );
    assert_eq!(
        source_of("services.worker.deploy.replicas").as_deref(),
        Some("swarm:service/voting_worker:Spec.Mode.Replicated.Replicas")
    );

    // --service reads one service; an unknown stack is refused with what to do.
    let one = ok(migrate(
        &bin,
        &[
            "--from-swarm",
            "--docker-host",
            &host,
            "--service",
            "voting_vote",
            "--dry-run",
        ],
        None,
    ));
    assert!(
        one.contains("service vote") && !one.contains("service db"),
        "{one}"
    );
    let (code, _, err) = migrate(
        &bin,
        &[
            "--from-swarm",
            "--docker-host",
            &host,
            "--stack",
            "nope",
            "--dry-run",
        ],
        None,
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("no stack named 'nope'") && err.contains("docker stack ls"),
        "{err}"
    );

    // --- A stack using configs, secrets, healthchecks, resources, placement, update and restart
    // policies, jobs, global mode, dnsrr, host ports, tmpfs/bind/volume mounts and ulimits.
    let shop = e2e::repo_root().join("tests/fixtures/live-swarm/shop/docker-stack.yml");
    d.stack_deploy(&shop, "shop").expect("stack deploy shop");
    let shop_arg = shop.to_string_lossy().into_owned();
    ok(migrate(
        &bin,
        &[&shop_arg, "--name", "shop", "-o", &out("shop-file")],
        None,
    ));
    // Secret data never leaves Swarm: without --secrets-dir the secret is needs-input.
    let json = ok(migrate(
        &bin,
        &[
            "--from-swarm",
            "--docker-host",
            &host,
            "--stack",
            "shop",
            // The full ledger is printed when the chart is written (--dry-run prints the diff
            // report, whose JSON carries only the ledger summary).
            "-o",
            &out("ledger-shop"),
            "--format",
            "json",
        ],
        None,
    ));
    let doc: serde_json::Value = serde_json::from_str(&json).expect("json ledger");
    let secret = doc["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["source"]["path"] == "secrets.db_password")
        .expect("ledger entry of the secret");
    assert_eq!(secret["status"], "needs-input", "{secret}");
    assert!(
        secret["reason"]
            .as_str()
            .is_some_and(|r| r.contains("--secrets-dir")),
        "{secret}"
    );
    assert!(!json.contains("not-a-real-password"));
    // With --secrets-dir holding the value, the chart is the file's.
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).expect("mkdir");
    std::fs::copy(
        shop.with_file_name("db_password.txt"),
        secrets.join("db_password"),
    )
    .expect("copy secret");
    let secrets_arg = secrets.to_string_lossy().into_owned();
    let text = ok(migrate(
        &bin,
        &[
            "--from-swarm",
            "--docker-host",
            &host,
            "--stack",
            "shop",
            "--secrets-dir",
            &secrets_arg,
            "-o",
            &out("shop-swarm"),
        ],
        None,
    ));
    assert!(text.contains("(--secrets-dir)"), "{text}");
    let from_file = chart(&dir.join("shop-file"));
    let from_swarm = chart(&dir.join("shop-swarm"));
    assert!(from_file.keys().any(|k| k.ends_with("web-deployment.yaml")));
    // Documented differences in this stack: origin comments, and the config's data key.
    let from_swarm = config_key_as_file_name(from_swarm, "nginx", "nginx", "nginx.conf");
    assert_same_chart(&normalised(from_file), &normalised(from_swarm));

    drop(d);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "dockerd (pid {pid}) still runs"
    );
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

#[test]
fn the_voting_copy_only_changes_images_and_replicas() {
    let original = "services:\n  a:\n    image: x\n    deploy:\n      replicas: 2\n    ports:\n      - 1:1\n  b:\n    image: y\n";
    assert_eq!(
        voting_copy(original),
        format!(
            "services:\n  a:\n    image: {IMAGE}\n    deploy:\n      replicas: 0\n    ports:\n      - 1:1\n  b:\n    image: {IMAGE}\n    deploy:\n      replicas: 0\n"
        )
    );
}
