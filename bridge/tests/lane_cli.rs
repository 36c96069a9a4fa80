//! The `bridge` binary with a lane config whose protos cannot be compiled: exit 64 (bad config)
//! before any port is bound, naming the lane and the file.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn unreadable_lane_protos_exit_64() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bridge.yaml");
    std::fs::write(
        &config,
        format!(
            "eureka: {{listen: \"127.0.0.1:0\"}}\nadmin: {{listen: \"127.0.0.1:0\"}}\n\
             lanes:\n  http:\n    listen: \"127.0.0.1:0\"\n    descriptors:\n      \
             protos: [missing/nothing.proto]\n      includes: [\"{}\"]\n",
            dir.path().display()
        ),
    )
    .expect("config written");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bridge"))
        .arg("--config")
        .arg(&config)
        .env_remove("BRIDGE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    // Bounded: a bridge that wrongly starts is killed by its PID instead of hanging the test.
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bridge did not exit within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("cannot start the lanes"), "{stderr}");
    assert!(stderr.contains("missing/nothing.proto"), "{stderr}");
}
