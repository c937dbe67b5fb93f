//! The control plane's processes fail while a `kubewasm run` host
//! reconciles (issue 10 §2): kube-apiserver killed for 15 s, etcd killed for
//! 10 s, etcd compacted so that the host's watch resumes into `410 Gone`.
//!
//! Each case asserts zero lost reconciles once the fault heals
//! ([`Expected`](kubewasm_e2e::faults::Expected)): every object created or
//! changed around the fault carries the mark of the current plugin for its
//! newest state, and every object deleted meanwhile was handed to the plugin
//! with its last state. The other `faults_*.rs` files hold the other faults.
//!
//! Each case starts a control plane of its own
//! ([`ControlPlane::private`]), so no other test sees the fault, and prints
//! how long after the control plane was ready again the last object was
//! reconciled (`cargo test --test faults_control_plane -- --nocapture`); the
//! numbers are in tests/README.md, and no assertion depends on them.

use std::time::{Duration, Instant};

use kubewasm_e2e::faults::{Component, churn, probe_with_objects};
use kubewasm_e2e::host::Host;
use kubewasm_e2e::{ControlPlane, TestNamespace};

const CM_WATCH_ERRORS: &str = "kubewasm_watch_errors_total{group=\"\",kind=\"ConfigMap\",reason=";

/// A probe host with objects on a control plane of its own, `component`
/// killed for `down_for`, changes made as soon as it is back: returns once
/// none of them is lost (printing how long after that took).
async fn restarted(
    name: &str,
    component: Component,
    down_for: Duration,
) -> (&'static ControlPlane, Host) {
    let cp = ControlPlane::private(name, &[]).await.unwrap();
    let ns = TestNamespace::create_in(cp, &format!("fault-{name}"))
        .await
        .unwrap();
    let (host, cms, mut expected) = probe_with_objects(&ns).await;

    cp.restart(component, down_for).await.unwrap();
    let ready = Instant::now();
    churn(&mut expected, &cms).await;
    expected.converge(&cms, &host).await;
    eprintln!(
        "faults: {component:?} down {down_for:?}: last object reconciled {:.1} s after /readyz was ok",
        ready.elapsed().as_secs_f64()
    );
    (cp, host)
}

#[tokio::test]
async fn api_server_down_15s_loses_nothing_and_is_reported() {
    let (cp, host) = restarted(
        "apiserver-down",
        Component::ApiServer,
        Duration::from_secs(15),
    )
    .await;

    // The outage was visible to an operator: a WARN line and the metric.
    let log = host.log();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("watch failing")),
        "no WARN line about the failing watch:\n{log}"
    );
    assert!(log.contains("watch recovered"), "{log}");
    assert!(
        host.metric(&format!("{CM_WATCH_ERRORS}\"unreachable\"}}")) >= 1.0,
        "{}",
        host.metrics().unwrap_or_default()
    );
    cp.down().await;
}

#[tokio::test]
async fn etcd_killed_10s_loses_nothing() {
    let (cp, _host) = restarted("etcd-down", Component::Etcd, Duration::from_secs(10)).await;
    cp.down().await;
}

#[tokio::test]
async fn etcd_compaction_forces_a_relist_that_loses_nothing() {
    // Without the watch cache, watches are served by etcd, whose compaction
    // answers a resume from an older resourceVersion with 410 Gone.
    let cp = ControlPlane::private("compaction", &["--no-watch-cache"])
        .await
        .unwrap();
    let ns = TestNamespace::create_in(cp, "fault-compact").await.unwrap();
    let (host, cms, mut expected) = probe_with_objects(&ns).await;
    let relists = "kubewasm_relists_total{group=\"\",kind=\"ConfigMap\"}";
    let relists_before = host.metric(relists);

    // The host is frozen while its watch is cut, the objects change and the
    // history it would resume from is compacted away.
    host.signal("STOP");
    cp.restart(Component::ApiServer, Duration::ZERO)
        .await
        .unwrap();
    churn(&mut expected, &cms).await;
    let revision = cp.compact().await.unwrap();
    host.signal("CONT");
    let resumed = Instant::now();
    expected.converge(&cms, &host).await;
    eprintln!(
        "faults: compaction to revision {revision}: last object reconciled {:.1} s after the host resumed",
        resumed.elapsed().as_secs_f64()
    );

    assert!(
        host.log().contains("410 Gone"),
        "no 410 Gone in the log:\n{}",
        host.log()
    );
    assert!(
        host.metric(relists) > relists_before,
        "no re-list after 410 Gone: {}",
        host.metrics().unwrap_or_default()
    );
    cp.down().await;
}
