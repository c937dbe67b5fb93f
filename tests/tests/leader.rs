//! Leader election under faults, judged by what the API server recorded:
//! two `kubewasm run --leader-elect` hosts on one private control plane, each
//! running the probe plugin with its own mark (`{"mark": "a"}`, `"b"`), while
//! the test keeps changing a few ConfigMaps' `data.n`. Whoever leads applies
//! its mark and echoes `data.n`, so every write a host makes shows up in a
//! watch as a new resourceVersion carrying the writer's mark: a write log in
//! the API server's own order, immune to the hosts' clocks.
//!
//! Faults: the leader frozen (SIGSTOP) until the standby took over, then
//! resumed (SIGCONT); the API server frozen past the lease duration; and one
//! host's wall clock 10 s ahead (libfaketime). The assertion each time: once
//! the new leader's first write landed, the other host writes nothing more.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kubewasm_e2e::faults::Component;
use kubewasm_e2e::host::{self, Host};
use kubewasm_e2e::probe;
use kubewasm_e2e::writes::{Write, WriteLog};
use kubewasm_e2e::{ControlPlane, TestNamespace, eventually, unique_name};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);
const CONFIGMAPS: usize = 4;
/// How long the hosts keep running after each fault: a host that still
/// believed it led would write in this time.
const SETTLE: Duration = Duration::from_secs(10);
/// The wall-clock offset of the skewed host.
const SKEW: &str = "+10s";

/// One fault's writes, judged: the host that leads at its end, and the
/// writes by any other host after that leader's first write.
#[derive(Debug)]
struct Verdict {
    leader: String,
    writes: usize,
    /// Fault to the new leader's first write.
    takeover: Duration,
    /// Writes by another host after the leader's first write.
    overlapping: Vec<Write>,
    /// From the leader's first write to the last overlapping one.
    overlap: Duration,
}

fn judge(writes: &[Write], since: Instant) -> Option<Verdict> {
    let leader = writes.last()?.writer.clone();
    let first = writes.iter().find(|w| w.writer == leader)?;
    let overlapping: Vec<Write> = writes
        .iter()
        .filter(|w| w.version > first.version && w.writer != leader)
        .cloned()
        .collect();
    let overlap = overlapping
        .iter()
        .map(|w| w.seen.saturating_duration_since(first.seen))
        .max()
        .unwrap_or_default();
    Some(Verdict {
        leader,
        writes: writes.len(),
        takeover: first.seen.saturating_duration_since(since),
        overlapping,
        overlap,
    })
}

/// Where Debian's `faketime` package puts libfaketime.
fn libfaketime() -> PathBuf {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "libfaketime not found (looked in {candidates:?}): install Debian's faketime \
                 package (apt-get install -y faketime; tests/run.sh does) to run the skewed-clock test"
            )
        })
}

/// `kubewasm run --leader-elect` with the probe plugin marking `mark`;
/// with `skew`, its wall clock is offset by libfaketime (its monotonic clock
/// is not: a skewed clock, not a clock running at another rate).
fn start_host(
    cluster: &ControlPlane,
    ns: &str,
    lease: &str,
    mark: &str,
    skew: Option<&str>,
) -> Host {
    let mut command = host::command(cluster);
    if let Some(skew) = skew {
        command
            .env("LD_PRELOAD", libfaketime())
            .env("FAKETIME", skew)
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }
    let plugins = host::example_plugins(&[("probe", Some(json!({ "mark": mark })))]);
    Host::spawn_command(command, plugins, &host::short_lease_args(ns, lease))
}

fn logs(hosts: &[&Host]) -> String {
    hosts
        .iter()
        .enumerate()
        .map(|(i, h)| format!("---- host {i} ----\n{}", h.log()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Keeps changing the ConfigMaps' `data.n`, one every 100 ms.
fn churn(configmaps: Api<ConfigMap>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for n in 1u64.. {
            let name = format!("cm-{}", n as usize % CONFIGMAPS);
            let patch = Patch::Merge(json!({"data": {"n": n.to_string()}}));
            let _ = configmaps
                .patch(&name, &PatchParams::default(), &patch)
                .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Two hosts (the second with `skew`), a leader frozen and resumed in
/// turn, then the API server frozen; every fault judged on the write log.
async fn handovers(skew: Option<&str>) {
    let cluster = ControlPlane::private("leader", &[]).await.unwrap();
    let ns = TestNamespace::create_in(cluster, "leader").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let (log, watch) = WriteLog::record(configmaps.clone());
    for i in 0..CONFIGMAPS {
        probe::create_configmap(&configmaps, &format!("cm-{i}"), "mark", &[]).await;
    }
    // A ConfigMap the probe is busy with for about 2.5 s per call: changed
    // just before each freeze, so the frozen leader holds a reconcile whose
    // intents are still to be applied when it resumes.
    probe::create_configmap(&configmaps, "slow", "slow", &[]).await;
    let lease = unique_name("lease");
    let a = start_host(cluster, ns.name(), &lease, "a", None);
    a.logged(WAIT, "became the leader").await;
    let b = start_host(cluster, ns.name(), &lease, "b", skew);
    b.logged(WAIT, "kubewasm running").await;
    let started = Instant::now();
    let churn = churn(configmaps.clone());
    log.wait_for_writer("a", started, WAIT, || logs(&[&a, &b]))
        .await;

    // Each fault: its name, the host expected to lead at its end, when it
    // began, and how often each host had failed to renew by then (a leader
    // starved of CPU past its renew deadline on a loaded machine loses the
    // lease rightly; the other may then lead, but never both).
    let stalls = |host: &Host| host.count("could not renew the leader lease");
    let mut verdicts = Vec::new();
    // Both running, nothing wrong: the standby (whose wall clock may be
    // ahead, so the leader's renewTime looks old to it) must not take over.
    verdicts.push((
        "both running".to_string(),
        "a",
        started,
        [stalls(&a), stalls(&b)],
    ));
    tokio::time::sleep(SETTLE).await;

    // The leader frozen until the standby took over, then resumed; in turn.
    for (old, name, new) in [(&a, "a", "b"), (&b, "b", "a")] {
        let patch = Patch::Merge(json!({"data": {"n": name}}));
        configmaps
            .patch("slow", &PatchParams::default(), &patch)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let dropped = old.count("intents not applied");
        let frozen = Instant::now();
        let stalled = [stalls(&a), stalls(&b)];
        old.signal("STOP");
        log.wait_for_writer(new, frozen, WAIT, || logs(&[&a, &b]))
            .await;
        if skew.is_some() && new == "b" {
            // The skewed host leads: the renewTime it wrote shows its clock.
            let leases: Api<Lease> = ns.api();
            let renewed = leases
                .get(&lease)
                .await
                .unwrap()
                .spec
                .and_then(|s| s.renew_time);
            let ahead = renewed.map(|t| t.0.duration_since(k8s_openapi::jiff::Timestamp::now()));
            eprintln!(
                "measured: the skewed host's renewTime is {ahead:?} ahead of the test's clock"
            );
            assert!(
                ahead.is_some_and(|d| d.as_secs_f64() > 5.0),
                "libfaketime did not skew the host's wall clock ({ahead:?})\n{}",
                b.log()
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        old.signal("CONT");
        tokio::time::sleep(SETTLE).await;
        eprintln!(
            "{name} resumed: it dropped the intents of {} reconciles as it no longer led",
            old.count("intents not applied") - dropped
        );
        verdicts.push((
            format!("{name} frozen (SIGSTOP) and resumed"),
            new,
            frozen,
            stalled,
        ));
    }

    // The API server frozen past the lease duration, then resumed.
    let frozen = Instant::now();
    let stalled = [stalls(&a), stalls(&b)];
    cluster.freeze(Component::ApiServer).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    cluster.resume(Component::ApiServer).await.unwrap();
    tokio::time::sleep(SETTLE).await;
    eventually(WAIT, || async {
        anyhow::ensure!(
            !log.since(frozen + Duration::from_secs(10)).is_empty(),
            "no write since the API server resumed"
        );
        Ok(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", logs(&[&a, &b])));
    verdicts.push(("API server frozen 10 s".to_string(), "", frozen, stalled));
    let end = [stalls(&a), stalls(&b)];

    churn.abort();
    watch.abort();

    // Judge each fault on the writes until the next one.
    let mut failures = Vec::new();
    for (i, (name, expected, since, stalled)) in verdicts.iter().enumerate() {
        let until = verdicts.get(i + 1).map(|v| v.2);
        let stalled_until = verdicts.get(i + 1).map_or(end, |v| v.3);
        let writes: Vec<Write> = log
            .since(*since)
            .into_iter()
            .filter(|w| until.is_none_or(|until| w.seen < until))
            .collect();
        let verdict = judge(&writes, *since)
            .unwrap_or_else(|| panic!("{name}: no write at all\n{}", logs(&[&a, &b])));
        eprintln!(
            "measured: {name}: {} writes, leader {} (first write {:?} after the fault), \
             {} writes by another host after it, overlap {:?}",
            verdict.writes,
            verdict.leader,
            verdict.takeover,
            verdict.overlapping.len(),
            verdict.overlap
        );
        let host = usize::from(*expected == "b");
        let starved = !expected.is_empty() && stalled_until[host] > stalled[host];
        if starved {
            eprintln!(
                "{name}: {expected} could not renew in time (starved of CPU?): any leader will do"
            );
        }
        if !expected.is_empty() && !starved && verdict.leader != *expected {
            failures.push(format!(
                "{name}: {} leads at the end, not {expected}",
                verdict.leader
            ));
        }
        if !verdict.overlapping.is_empty() {
            failures.push(format!(
                "{name}: both applied: {} wrote after {}'s first write: {:?}",
                verdict.overlapping[0].writer, verdict.leader, verdict.overlapping
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}\n{}", logs(&[&a, &b]));
    // Each host logged its own turns.
    for host in [&a, &b] {
        assert!(host.log().contains("became the leader"), "{}", host.log());
    }
}

#[tokio::test]
async fn a_frozen_leader_never_writes_after_the_standby_took_over() {
    handovers(None).await;
}

#[tokio::test]
async fn with_one_wall_clock_10s_ahead_two_hosts_never_apply_at_once() {
    handovers(Some(SKEW)).await;
}

#[test]
fn a_fault_is_judged_on_the_writes_after_the_last_leaders_first() {
    let t0 = Instant::now();
    let write = |version, writer: &str, ms| Write {
        object: "ns/cm".into(),
        version,
        writer: writer.into(),
        seen: t0 + Duration::from_millis(ms),
    };
    let clean = [write(1, "a", 0), write(2, "b", 700), write(3, "b", 900)];
    let verdict = judge(&clean, t0).unwrap();
    assert_eq!(verdict.leader, "b");
    assert!(verdict.overlapping.is_empty());
    assert_eq!(verdict.takeover, Duration::from_millis(700));
    let both = [
        write(1, "b", 0),
        write(3, "a", 100),
        write(4, "b", 1_300),
        write(2, "b", 50),
    ];
    let mut sorted = both.to_vec();
    sorted.sort_by_key(|w| w.version);
    let verdict = judge(&sorted, t0).unwrap();
    assert_eq!(verdict.leader, "b");
    assert_eq!(verdict.overlapping.len(), 1);
    assert_eq!(verdict.overlap, Duration::from_millis(100));
}
