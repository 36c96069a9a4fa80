//! The `bridge` binary: exit 64 on bad config, the startup lines subprocess tests read, and a
//! clean exit 0 on SIGTERM.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn bridge() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bridge"));
    c.env_remove("RUST_LOG")
        .env("BRIDGE_EUREKA_LISTEN", "127.0.0.1:0")
        .env("BRIDGE_ADMIN_LISTEN", "127.0.0.1:0");
    c
}

#[test]
fn bad_config_exits_64_with_a_clear_message() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(b"eureka:\n  renewal_percent_threshold: 7\n")
        .expect("write");
    let out = bridge()
        .arg("--config")
        .arg(file.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("eureka.renewal_percent_threshold"),
        "{stderr}"
    );

    let out = bridge()
        .env("BRIDGE_EUREKA_LISTEN", "not-an-address")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BRIDGE_EUREKA_LISTEN"));

    // Discovery's mapping file and kubeconfig are read before any port is bound: exit 64 too.
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing-mapping.yaml");
    let out = bridge()
        .env("BRIDGE_DISCOVERY_ENABLED", "true")
        .env("BRIDGE_DISCOVERY_MAPPING_FILE", &missing)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing-mapping.yaml"), "{stderr}");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "clusters: [").expect("write");
    let out = bridge()
        .env("BRIDGE_DISCOVERY_ENABLED", "true")
        .env("BRIDGE_DISCOVERY_KUBECONFIG", &kubeconfig)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("discovery.kubeconfig"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn logs_its_addresses_and_exits_0_on_sigterm() {
    let mut child = bridge()
        .args(["--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = (false, false);
    while !(seen.0 && seen.1) {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            panic!("no startup lines within 20 s");
        };
        seen.0 |= line.contains("eureka listening on 127.0.0.1:");
        seen.1 |= line.contains("admin listening on 127.0.0.1:");
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = child.wait().expect("exits");
    assert_eq!(status.code(), Some(0));
}
