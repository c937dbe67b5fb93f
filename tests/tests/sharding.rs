//! Sharding, judged by what the API server recorded: `kubewasm run
//! --shard-ring` hosts on a private control plane, each running the probe
//! plugin with its own mark (`{"mark": "a"}`, `"b"`, …), split 24 namespaces
//! of ConfigMaps while the test keeps changing their `data.n`. Whoever works
//! a key applies its mark and echoes `data.n`, so a watch sees every write
//! with its writer, in the API server's order.
//!
//! The hosts: a, b and c join; b is killed (SIGKILL, its Lease left to
//! expire); d joins; a leaves (SIGTERM, its Lease deleted). After each step
//! every object must be marked by the owner the ring of the live members
//! names (computed here with the host's own `Ring`), and at the end echo
//! its last `data.n` (no change lost). Overlap: within each step (the
//! start, the kill, the join, the leave) a key only moves to a joiner or
//! away from the one that left, so per object, once another host wrote it
//! in that step, an earlier writer never writes it again: a return would be
//! two hosts working one key. (Across steps it may rightly return: a key
//! that went from a to b when b joined goes back to a when b dies.)

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kubewasm::cluster::shard::{self, MemberId, RING_LABEL, Ring, VIEW_ANNOTATION};
use kubewasm_e2e::host::{self, Host};
use kubewasm_e2e::probe::{self, ECHO, MARK};
use kubewasm_e2e::writes::WriteLog;
use kubewasm_e2e::{ControlPlane, eventually};
use serde_json::json;

const NAMESPACES: usize = 24;
const PER_NAMESPACE: usize = 10;
const RING_NAME: &str = "e2e";
const LEASES: &str = "kubewasm-shards";
/// The lease of `host::SHORT_LEASE_TIMINGS`: renewed every 2 s, a member
/// stops 4 s after its last renewal.
const LEASE_SECONDS: u64 = 6;
const WAIT: Duration = Duration::from_secs(90);

fn key(cm: &ConfigMap) -> String {
    format!(
        "{}/{}",
        cm.metadata.namespace.as_deref().unwrap_or_default(),
        cm.metadata.name.as_deref().unwrap_or_default()
    )
}

fn namespace(i: usize) -> String {
    format!("shard-{i:02}")
}

/// `kubewasm run --shard-ring` as member `mark` (its identity starts with
/// `host-<mark>-`), the probe marking `mark`.
fn start_host(cluster: &ControlPlane, mark: &str) -> Host {
    let mut command = host::command(cluster);
    command.env("POD_NAME", format!("host-{mark}"));
    let plugins = host::example_plugins(&[("probe", Some(json!({ "mark": mark })))]);
    let mut args = vec![
        "--shard-ring",
        RING_NAME,
        "--leader-elect-namespace",
        LEASES,
    ];
    args.extend(host::SHORT_LEASE_TIMINGS);
    Host::spawn_command(command, plugins, &args)
}

/// Waits until the ring's Leases held by `marks` all acknowledge the view
/// of exactly those members; returns each mark's identity.
async fn ring_of(
    client: &kube::Client,
    marks: &[&str],
    hosts: &HostSet,
) -> BTreeMap<String, MemberId> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASES);
    eventually(WAIT, || async {
        let list = leases
            .list(&ListParams::default().labels(&format!("{RING_LABEL}={RING_NAME}")))
            .await?;
        let mut ids = BTreeMap::new();
        let mut views = BTreeSet::new();
        for lease in &list.items {
            let Some(id) = lease.spec.as_ref().and_then(|s| s.holder_identity.clone()) else {
                continue;
            };
            let Some(mark) = marks.iter().find(|m| id.starts_with(&format!("host-{m}-"))) else {
                continue;
            };
            let view = lease
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(VIEW_ANNOTATION))
                .cloned();
            views.insert(view.unwrap_or_default());
            ids.insert(mark.to_string(), MemberId::from(id.as_str()));
        }
        anyhow::ensure!(
            ids.len() == marks.len(),
            "members {:?} of {marks:?}",
            ids.keys()
        );
        let live: BTreeSet<MemberId> = ids.values().cloned().collect();
        let expected = shard::view(&live);
        anyhow::ensure!(
            views.len() == 1 && views.contains(&expected),
            "views {views:?}, expected {expected}"
        );
        Ok(ids)
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "the ring never settled on {marks:?}: {e:#}\n{}",
            hosts.logs()
        )
    })
}

/// Waits until every object is marked by the member `ids`' ring gives its
/// namespace (and, with `last`, echoes its last `data.n`).
async fn owned_by_ring(
    configmaps: &Api<ConfigMap>,
    ids: &BTreeMap<String, MemberId>,
    last: Option<&BTreeMap<String, u32>>,
    hosts: &HostSet,
) {
    let ring = Ring::new(ids.values());
    let mark_of: HashMap<&str, &str> = ids.iter().map(|(m, id)| (&**id, m.as_str())).collect();
    eventually(WAIT, || async {
        let list = configmaps
            .list(&ListParams::default().labels(probe::BEHAVE))
            .await?;
        anyhow::ensure!(
            list.items.len() == NAMESPACES * PER_NAMESPACE,
            "{} objects",
            list.items.len()
        );
        for cm in &list.items {
            let ns = cm.metadata.namespace.as_deref().unwrap_or_default();
            let owner = ring.owner(shard::key_hash(Some(ns), "")).expect("a member");
            let expected = mark_of[&**owner];
            let mark = probe::annotation(cm, MARK);
            anyhow::ensure!(
                mark.as_deref() == Some(expected),
                "{} marked {mark:?}, its owner is {expected}",
                key(cm)
            );
            if let Some(last) = last {
                let n = last[&key(cm)].to_string();
                let echo = probe::annotation(cm, ECHO);
                anyhow::ensure!(
                    echo.as_deref() == Some(n.as_str()),
                    "{} echoes {echo:?}, last n={n}",
                    key(cm)
                );
            }
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "not every object is marked by its owner: {e:#}\n{}",
            hosts.logs()
        )
    });
}

#[derive(Default)]
struct HostSet(BTreeMap<String, Host>);

impl HostSet {
    fn logs(&self) -> String {
        self.0
            .iter()
            .map(|(mark, host)| format!("--- host {mark} ---\n{}", host.log()))
            .collect()
    }
}

/// Keeps changing random objects' `data.n` until stopped; the last value of each.
fn churn(
    configmaps: Api<ConfigMap>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<BTreeMap<String, u32>> {
    tokio::spawn(async move {
        let mut last = BTreeMap::new();
        let mut n = 0u32;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            // A fixed walk over every object.
            let step = n as usize * 7;
            let (i, j) = (step % NAMESPACES, (step / NAMESPACES) % PER_NAMESPACE);
            let api: Api<ConfigMap> =
                Api::namespaced(configmaps.clone().into_client(), &namespace(i));
            let patch = json!({"data": {"n": n.to_string()}});
            if api
                .patch(
                    &format!("cm-{j}"),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .is_ok()
            {
                last.insert(format!("{}/cm-{j}", namespace(i)), n);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        last
    })
}

/// A private control plane with the namespaces and ConfigMaps, a write
/// log, and the churn running.
struct Fixture {
    cluster: &'static ControlPlane,
    client: kube::Client,
    all: Api<ConfigMap>,
    last: BTreeMap<String, u32>,
    log: WriteLog,
    watch: tokio::task::JoinHandle<()>,
    stop_churn: Arc<AtomicBool>,
    churning: tokio::task::JoinHandle<BTreeMap<String, u32>>,
}

impl Fixture {
    async fn start(name: &str) -> Self {
        let cluster = ControlPlane::private(name, &[]).await.unwrap();
        let client = cluster.client().await.unwrap();
        let namespaces: Api<Namespace> = Api::all(client.clone());
        for name in std::iter::once(LEASES.to_string()).chain((0..NAMESPACES).map(namespace)) {
            let ns: Namespace =
                serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
            namespaces
                .create(&PostParams::default(), &ns)
                .await
                .unwrap();
        }
        let mut last: BTreeMap<String, u32> = BTreeMap::new();
        for i in 0..NAMESPACES {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace(i));
            for j in 0..PER_NAMESPACE {
                probe::create_configmap(&api, &format!("cm-{j}"), "mark", &[("n", "0")]).await;
                last.insert(format!("{}/cm-{j}", namespace(i)), 0);
            }
        }
        let all: Api<ConfigMap> = Api::all(client.clone());
        let (log, watch) = WriteLog::record(all.clone());
        let stop_churn = Arc::new(AtomicBool::new(false));
        let churning = churn(all.clone(), stop_churn.clone());
        Self {
            cluster,
            client,
            all,
            last,
            log,
            watch,
            stop_churn,
            churning,
        }
    }

    /// Stops the churn; every object must then echo its last `data.n`,
    /// marked by the owner `ids` gives it.
    async fn no_change_lost(&mut self, ids: &BTreeMap<String, MemberId>, hosts: &HostSet) {
        self.stop_churn.store(true, Ordering::Relaxed);
        let changed = (&mut self.churning).await.unwrap();
        self.last.extend(changed);
        owned_by_ring(&self.all, ids, Some(&self.last), hosts).await;
        self.watch.abort();
    }
}

#[tokio::test]
async fn hosts_split_the_namespaces_and_hand_them_over_without_overlap_or_loss() {
    let mut fixture = Fixture::start("sharding").await;
    let (cluster, client, all) = (fixture.cluster, fixture.client.clone(), fixture.all.clone());
    let log = fixture.log.clone();
    let mut hosts = HostSet::default();
    let started = Instant::now();
    for mark in ["a", "b", "c"] {
        hosts.0.insert(mark.into(), start_host(cluster, mark));
    }
    let ids = ring_of(&client, &["a", "b", "c"], &hosts).await;
    owned_by_ring(&all, &ids, None, &hosts).await;
    println!(
        "3 hosts: every object marked by its owner {:?} after start",
        started.elapsed()
    );
    // Which host marked an object is checked above; here only that the
    // work is split at all (24 namespaces on 3 members).
    assert!(
        log.writers().len() >= 2,
        "one host did all: {:?}",
        log.writers()
    );

    // b dies: its share moves once its Lease stood still for a lease duration.
    let killed = Instant::now();
    hosts.0.get_mut("b").unwrap().kill();
    let ids = ring_of(&client, &["a", "c"], &hosts).await;
    owned_by_ring(&all, &ids, None, &hosts).await;
    let took = killed.elapsed();
    println!("b killed: its share served by a and c after {took:?}");
    assert!(took < Duration::from_secs(LEASE_SECONDS + 10), "{took:?}");

    // d joins and takes its share.
    let joined = Instant::now();
    hosts.0.insert("d".into(), start_host(cluster, "d"));
    let ids = ring_of(&client, &["a", "c", "d"], &hosts).await;
    owned_by_ring(&all, &ids, None, &hosts).await;
    println!(
        "d joined: its share served after {:?} (process start included)",
        joined.elapsed()
    );

    // a leaves gracefully: its Lease is deleted, no lease duration to wait.
    let leaving = Instant::now();
    let exited = hosts
        .0
        .get_mut("a")
        .unwrap()
        .terminate(Duration::from_secs(30));
    assert!(
        exited.is_some_and(|s| s.success()),
        "a exits cleanly: {exited:?}"
    );
    let ids = ring_of(&client, &["c", "d"], &hosts).await;
    owned_by_ring(&all, &ids, None, &hosts).await;
    let took = leaving.elapsed();
    println!("a left (SIGTERM): its share served by c and d after {took:?}");
    assert!(
        took < Duration::from_secs(LEASE_SECONDS),
        "a graceful leave waits for no lease: {took:?}"
    );

    // No change lost: every object echoes its last data.n, by its owner.
    fixture.no_change_lost(&ids, &hosts).await;
    // Within each step keys only move one way (to joiners, or away from
    // the one that left), so no object may go back to a writer in it.
    let steps = [started, killed, joined, leaving, Instant::now()];
    let returns: Vec<String> = steps
        .windows(2)
        .flat_map(|step| log.returns(step[0]..step[1]))
        .collect();
    assert!(
        returns.is_empty(),
        "objects written again by a host after another took them over: {returns:#?}\n{}",
        hosts.logs()
    );
    // Each replica caches only its namespaces' ConfigMaps (the API server
    // keeps one of its own in kube-system too).
    let ring = Ring::new(ids.values());
    let every: Vec<String> = all
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|cm| cm.metadata.namespace.clone().unwrap_or_default())
        .collect();
    for (mark, id) in &ids {
        let mine = every
            .iter()
            .filter(|ns| ring.owns(id, shard::key_hash(Some(ns), "")))
            .count();
        let cached = hosts.0[mark].metric("kubewasm_cached_objects{group=\"\",kind=\"ConfigMap\"}");
        assert_eq!(
            cached as usize, mine,
            "{mark} caches {cached} ConfigMaps, its namespaces hold {mine}"
        );
        println!(
            "{mark}: caches {cached} of {} ConfigMaps, those of its namespaces",
            every.len()
        );
    }
    let c = &hosts.0["c"];
    assert_eq!(c.metric("kubewasm_shard_members"), 2.0);
    let share = c.metric("kubewasm_shard_share");
    assert!(share > 0.0 && share < 1.0, "c's share {share}");
    println!(
        "{} writes recorded, no object went back to an earlier writer",
        log.len()
    );
    cluster.down().await;
}

/// A member frozen (SIGSTOP) past its lease: the others take its share. When
/// it resumes (SIGCONT) its gate has closed by its own clock, so it works
/// nothing until it has earned its share again through a handover: after
/// the resume no object goes back and forth between it and the member that
/// took it over, and no change is lost.
#[tokio::test]
async fn a_frozen_host_resumes_without_working_what_moved() {
    let mut fixture = Fixture::start("sharding-freeze").await;
    let (cluster, client, all) = (fixture.cluster, fixture.client.clone(), fixture.all.clone());
    let mut hosts = HostSet::default();
    for mark in ["a", "b", "c"] {
        hosts.0.insert(mark.into(), start_host(cluster, mark));
    }
    let ids = ring_of(&client, &["a", "b", "c"], &hosts).await;
    owned_by_ring(&all, &ids, None, &hosts).await;

    let frozen = Instant::now();
    hosts.0["b"].signal("STOP");
    let ids = ring_of(&client, &["a", "c"], &hosts).await;
    owned_by_ring(&all, &ids, None, &hosts).await;
    println!(
        "b frozen: its share served by a and c after {:?}",
        frozen.elapsed()
    );

    let resumed = Instant::now();
    hosts.0["b"].signal("CONT");
    let ids = ring_of(&client, &["a", "b", "c"], &hosts).await;
    owned_by_ring(&all, &ids, None, &hosts).await;
    println!("b resumed: its share back after {:?}", resumed.elapsed());
    fixture.no_change_lost(&ids, &hosts).await;
    let returns = fixture.log.returns(resumed..Instant::now());
    assert!(
        returns.is_empty(),
        "after the resume, objects written again by a host after another took them over: {returns:#?}\n{}",
        hosts.logs()
    );
    assert!(
        hosts.0["b"].log().contains("the shard lease lapsed"),
        "b noticed its gate had closed:\n{}",
        hosts.0["b"].log()
    );
    cluster.down().await;
}
