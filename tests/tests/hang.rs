//! The host against an API server that hangs (SIGSTOP on its process, as a
//! stalled process or node looks to its clients), each test on a control
//! plane of its own: readiness follows the API server, writes are held and
//! never land late, SIGTERM exits within the grace, a host starts before
//! the API server answers, and a leader that cannot renew stops applying
//! before a standby takes over.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kubewasm_e2e::faults::Component;
use kubewasm_e2e::host::{Host, http_get, sample, short_lease_args};
use kubewasm_e2e::probe::{self, ECHO, MARK};
use kubewasm_e2e::{ControlPlane, TestNamespace, eventually, unique_name};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);

async fn create_configmaps(configmaps: &Api<ConfigMap>, names: &[String]) {
    for name in names {
        probe::create_configmap(configmaps, name, "mark", &[]).await;
    }
}

fn mark(cm: &ConfigMap) -> Option<String> {
    probe::annotation(cm, MARK)
}

/// Waits until every ConfigMap in `names` carries the mark `value`.
async fn marked(host: &Host, configmaps: &Api<ConfigMap>, names: &[String], value: &str) {
    host.eventually(WAIT, || async {
        for name in names {
            let cm = configmaps.get(name).await?;
            anyhow::ensure!(
                mark(&cm).as_deref() == Some(value),
                "{name} not marked {value}"
            );
        }
        Ok(())
    })
    .await
}

/// Waits until `/readyz` answers `status` with a body containing `needle`.
async fn readyz(host: &Host, status: u16, needle: &str) -> String {
    let addr = host.wait_admin_addr(WAIT).await;
    host.eventually(WAIT, || async {
        let (got, body) = http_get(addr, "/readyz")?;
        anyhow::ensure!(
            got == status && body.contains(needle),
            "/readyz answered {got}: {body}"
        );
        Ok(body)
    })
    .await
}

#[tokio::test]
async fn a_hung_api_server_makes_the_host_unready_holds_its_writes_and_sigterm_exits_in_time() {
    let cluster = ControlPlane::private("hang", &[]).await.unwrap();
    let ns = TestNamespace::create_in(cluster, "hang").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let names: Vec<String> = (0..12).map(|i| format!("cm-{i}")).collect();
    create_configmaps(&configmaps, &names).await;
    let grace = 10;
    let mut host = Host::start_on(
        cluster,
        &[("probe", None)],
        &[
            "--namespace",
            ns.name(),
            "--shutdown-grace-seconds",
            &grace.to_string(),
        ],
    );
    marked(&host, &configmaps, &names, "seen").await;
    readyz(&host, 200, "ok").await;

    // The API server hangs: readiness says so, naming it, and one WARN line.
    cluster.freeze(Component::ApiServer).await.unwrap();
    let paused = Instant::now();
    let body = readyz(&host, 503, "does not answer").await;
    eprintln!(
        "measured: API server paused -> host /readyz 503 after {:?} ({})",
        paused.elapsed(),
        body.trim()
    );
    assert!(body.contains("the API server https://127.0.0.1:"), "{body}");
    host.logged(WAIT, "the API server does not answer").await;
    let metrics = host.metrics().unwrap();
    assert_eq!(
        sample(&metrics, "kubewasm_apiserver_answering"),
        Some(0.0),
        "{metrics}"
    );

    // New settings while it hangs: every ConfigMap is reconciled again and
    // would be marked v2. The writes are held, not sent into the hung
    // server, so none is left in flight to land when it resumes.
    std::fs::write(
        host.plugin_dir().join("probe.settings.json"),
        r#"{"mark": "v2"}"#,
    )
    .unwrap();
    host.logged(WAIT, "write not sent: the API server does not answer")
        .await;

    let signalled = Instant::now();
    let status = host
        .terminate(Duration::from_secs(grace + 60))
        .unwrap_or_else(|| panic!("no exit after SIGTERM\n{}", host.log()));
    let exit = signalled.elapsed();
    eprintln!("measured: SIGTERM during the hang -> exit after {exit:?} (grace {grace} s)");
    let log = host.log();
    assert!(status.success(), "exit status {status:?}\n{log}");
    assert!(log.contains("shut down"), "{log}");
    // No release of the lease-less host's writes, and no write of the
    // hang's reconciles lands once the API server runs again.
    cluster.resume(Component::ApiServer).await.unwrap();
    let probe = eventually(WAIT, || async { Ok(configmaps.get(&names[0]).await?) }).await;
    probe.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    for name in &names {
        let cm = configmaps.get(name).await.unwrap();
        assert_eq!(
            mark(&cm).as_deref(),
            Some("seen"),
            "{name}: a write sent during the hang landed after the host exited\n{log}"
        );
    }
}

#[tokio::test]
async fn the_host_starts_before_the_api_server_answers_and_reconciles_once_it_does() {
    let cluster = ControlPlane::private("hang", &[]).await.unwrap();
    let ns = TestNamespace::create_in(cluster, "hang").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let names: Vec<String> = (0..3).map(|i| format!("early-{i}")).collect();
    create_configmaps(&configmaps, &names).await;

    cluster.freeze(Component::ApiServer).await.unwrap();
    let mut host = Host::start_on(cluster, &[("probe", None)], &["--namespace", ns.name()]);
    // Probes answer while the API server does not: alive, not ready.
    let addr = host.wait_admin_addr(WAIT).await;
    assert_eq!(http_get(addr, "/livez").unwrap().0, 200);
    let body = readyz(&host, 503, "does not answer").await;
    assert!(body.contains("the API server https://127.0.0.1:"), "{body}");
    host.logged(WAIT, "retrying with backoff until the API server answers")
        .await;
    assert!(host.is_running(), "the host exited:\n{}", host.log());

    cluster.resume(Component::ApiServer).await.unwrap();
    let resumed = Instant::now();
    marked(&host, &configmaps, &names, "seen").await;
    eprintln!(
        "measured: API server resumed -> objects reconciled by the waiting host after {:?}",
        resumed.elapsed()
    );
    readyz(&host, 200, "ok").await;
    host.logged(WAIT, "the API server answers again").await;
}

/// Seconds since the Unix epoch of a log line's RFC 3339 UTC timestamp
/// (`2026-12-03T17:27:40.123456Z ...`).
fn timestamp(line: &str) -> Option<f64> {
    let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut ymd = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, d) = (ymd.next()?.ok()?, ymd.next()?.ok()?, ymd.next()?.ok()?);
    let mut hms = time.split(':');
    let (h, min) = (
        hms.next()?.parse::<f64>().ok()?,
        hms.next()?.parse::<f64>().ok()?,
    );
    let s: f64 = hms.next()?.parse().ok()?;
    // Days from the civil date (proleptic Gregorian), after H. Hinnant.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + min * 60.0 + s)
}

/// The times a host led: from "became the leader" to "stopped applying" or
/// "not the leader" (or the end of its log).
fn leadership(log: &str) -> Vec<(f64, f64)> {
    let mut spans = Vec::new();
    let mut since = None;
    for line in log.lines() {
        let Some(at) = timestamp(line) else { continue };
        if line.contains("became the leader") {
            since.get_or_insert(at);
        } else if (line.contains("stopped applying")
            || line.contains("not the leader: standing by"))
            && let Some(start) = since.take()
        {
            spans.push((start, at));
        }
    }
    if let Some(start) = since {
        spans.push((start, f64::INFINITY));
    }
    spans
}

/// When a host's writes completed (applied intents).
fn writes(log: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains("intent done") && l.contains("applied"))
        .filter_map(timestamp)
        .collect()
}

#[test]
fn log_timestamps_and_leadership_spans_are_read() {
    assert_eq!(
        timestamp("1970-01-02T00:00:01.500000Z  INFO x"),
        Some(86_401.5)
    );
    let a = timestamp("2026-12-03T17:27:40.000000Z").unwrap();
    let b = timestamp("2026-12-04T00:00:00.000000Z").unwrap();
    assert_eq!(b - a, 6.0 * 3600.0 + 32.0 * 60.0 + 20.0);
    let log = "2026-12-03T00:00:01.000000Z  INFO became the leader: applying intents\n\
               2026-12-03T00:00:02.000000Z DEBUG intent done result=applied\n\
               2026-12-03T00:00:05.000000Z  WARN could not renew ...: stopped applying\n\
               2026-12-03T00:00:09.000000Z  INFO became the leader: applying intents\n";
    let spans = leadership(log);
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].1 - spans[0].0, 4.0);
    assert!(spans[1].1.is_infinite());
    assert_eq!(writes(log).len(), 1);
}

#[tokio::test]
async fn a_leader_that_cannot_renew_stops_applying_before_a_standby_takes_over() {
    let cluster = ControlPlane::private("hang", &[]).await.unwrap();
    let ns = TestNamespace::create_in(cluster, "hang").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let lease = unique_name("lease");
    let args = short_lease_args(ns.name(), &lease);
    let first = Host::start_on(cluster, &[("probe", None)], &args);
    first.logged(WAIT, "became the leader").await;
    let second = Host::start_on(cluster, &[("probe", None)], &args);
    second.logged(WAIT, "kubewasm running").await;

    // A ConfigMap whose data keeps changing: whoever leads echoes it.
    create_configmaps(&configmaps, &["counter".to_string()]).await;
    let churn = {
        let configmaps = configmaps.clone();
        tokio::spawn(async move {
            for n in 1u64.. {
                let patch = Patch::Merge(json!({"data": {"n": n.to_string()}}));
                let _ = configmaps
                    .patch("counter", &PatchParams::default(), &patch)
                    .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let echoed = |at_least: u64| {
        let configmaps = configmaps.clone();
        async move {
            let cm = configmaps.get("counter").await?;
            let echo: u64 = cm
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ECHO))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            anyhow::ensure!(echo >= at_least, "echo {echo} < {at_least}");
            Ok(())
        }
    };
    first.eventually(WAIT, || echoed(5)).await;

    // The API server hangs past the lease's duration: the leader cannot
    // renew, and stops applying at the renew deadline, while still hung.
    cluster.freeze(Component::ApiServer).await.unwrap();
    let paused = Instant::now();
    first
        .logged(
            WAIT,
            "could not renew the leader lease within the renew deadline",
        )
        .await;
    eprintln!(
        "measured: API server paused -> leader stopped applying after {:?} (renew deadline 4 s, renewed every 2 s)",
        paused.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    cluster.resume(Component::ApiServer).await.unwrap();

    // After it: someone leads again and catches up with the changes.
    let resumed = eventually(WAIT, || async {
        let cm = configmaps.get("counter").await?;
        Ok(cm.data.unwrap_or_default()["n"].parse::<u64>()?)
    })
    .await
    .unwrap();
    eventually(WAIT, || echoed(resumed + 10))
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}\n---- second ----\n{}", first.log(), second.log()));
    churn.abort();

    // Never both: the hosts' leadership spans do not overlap, and each
    // host's writes completed while it led (or within its 3 s request
    // timeout after it stopped).
    let (a, b) = (first.log(), second.log());
    let both = format!("---- first ----\n{a}\n---- second ----\n{b}");
    let (spans_a, spans_b) = (leadership(&a), leadership(&b));
    eprintln!("leadership spans: first {spans_a:?}, second {spans_b:?}");
    // The leader's gate closes by its clock at the renew deadline, while
    // the API server still hangs; no standby can take over before it
    // resumes (tests/leader.rs judges the same on the API server's order).
    for (start_a, end_a) in &spans_a {
        for (start_b, end_b) in &spans_b {
            assert!(
                end_a <= start_b || end_b <= start_a,
                "both led at once: {start_a}..{end_a} and {start_b}..{end_b}\n{both}"
            );
        }
    }
    for (log, spans) in [(&a, &spans_a), (&b, &spans_b)] {
        for at in writes(log) {
            assert!(
                spans
                    .iter()
                    .any(|(start, end)| *start <= at && at <= end + 3.5),
                "a write at {at} outside the host's leadership {spans:?}\n{both}"
            );
        }
    }
}
