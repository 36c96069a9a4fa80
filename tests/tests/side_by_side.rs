//! The side-by-side demo (`examples/side-by-side/run.sh`) end to end: a tonic gRPC service, the
//! bridge binary, a legacy Python service registered with py-eureka-client and a grpcio caller,
//! all on 127.0.0.1. Asserts that every step succeeded and that the lane header arrived at the far
//! end in both directions.

use std::path::PathBuf;
use std::time::Duration;

use e2e::process::Child;
use e2e::{repo_root, shared_dir, tool};

/// The profile folder holding this test binary (`target/debug`), where cargo puts the binaries.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .expect("target/<profile>/deps/<test>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_every_step_and_lane_headers_cross_both_ways() {
    if shared_dir().is_none() {
        println!("skipped: ../shared is absent (the demo needs its google/api protos)");
        return;
    }
    let Some(python) = tool("python3") else {
        println!("skipped: python3 not on PATH");
        return;
    };
    // The venv tests/run installs (py-eureka-client, grpcio); without it run.sh would install it.
    let venv_ok = std::process::Command::new(&python)
        .args(["-c", "import py_eureka_client, grpc, grpc_tools"])
        .status()
        .is_ok_and(|s| s.success());
    if !venv_ok {
        assert!(
            !e2e::under_tests_run(),
            "py-eureka-client/grpcio missing under tests/run"
        );
        println!("skipped: py-eureka-client or grpcio not importable (tests/run installs them)");
        return;
    }

    // Build the two binaries into the same target folder as this test (a no-op when current).
    let profile = profile_dir();
    let target = profile.parent().expect("target dir").to_path_buf();
    let status = std::process::Command::new(env!("CARGO"))
        .current_dir(repo_root())
        .args([
            "build", "--quiet", "--locked", "-p", "bridge", "--bin", "bridge",
        ])
        .args(["-p", "rpc", "--bin", "echo_server", "--target-dir"])
        .arg(&target)
        .status()
        .expect("cargo build");
    assert!(status.success(), "cargo build of bridge and echo_server");

    let lane = format!("e2e-{}", std::process::id());
    let mut cmd = tokio::process::Command::new(repo_root().join("examples/side-by-side/run.sh"));
    cmd.env("MESHMOVE_BRIDGE_BIN", profile.join("bridge"))
        .env("MESHMOVE_ECHO_SERVER_BIN", profile.join("echo_server"))
        .args(["--lane", &lane]);
    let mut demo = Child::spawn("side-by-side demo", cmd).expect("spawn run.sh");
    let mut lines = Vec::new();
    loop {
        let line = demo
            .next_line(Duration::from_secs(60))
            .await
            .expect("demo output");
        // On a failed step the demo stops its processes and exits; wait for that before failing.
        let done = line.starts_with("demo: ") || line.contains("FAILED");
        lines.push(line);
        if done {
            break;
        }
    }
    let status = demo.wait(Duration::from_secs(15)).await.expect("demo exit");
    let failed: Vec<&String> = lines.iter().filter(|l| l.contains("FAILED")).collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", demo.diagnostics());
    assert!(status.success(), "demo exited {status:?}");

    for n in 1..=6 {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("step {n}/6 ok: "))),
            "step {n} missing:\n{}",
            lines.join("\n")
        );
    }
    assert_eq!(lines.last().map(String::as_str), Some("demo: 6/6 steps ok"));
    // The lane header as the far ends reported it: the tonic server's metadata and the legacy
    // service's request headers.
    let step = |n: usize| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("step {n}/6 ok: ")))
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        step(5).ends_with(&format!("tonic service received x-lane: {lane}")),
        "{}",
        step(5)
    );
    assert!(
        step(6).ends_with(&format!(
            "legacy service received GET /v1/orders/42 with x-lane: {lane}"
        )),
        "{}",
        step(6)
    );
    assert!(step(6).contains("\"orderId\": \"42\""), "{}", step(6));
    assert!(step(3).contains("registered with py-eureka-client as LEGACY-ORDERS"));
}
