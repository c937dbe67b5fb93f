//! One run of the side-by-side benchmark: a fresh control plane, one
//! controller on it, a burst of ConfigMaps, and what it cost.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kubewasm_e2e::faults::Component;
use kubewasm_e2e::host::Host;
use kubewasm_e2e::peers::{self, LABEL, Peer, VALUE};
use kubewasm_e2e::process::{self, Memory};
use kubewasm_e2e::sidebyside::{Controller, Run, percentile};
use kubewasm_e2e::{ControlPlane, eventually};
use tokio::sync::oneshot;

/// Requests in flight while the burst is created.
const IN_FLIGHT: usize = 32;
/// How long a controller may take to label the warm-up object (start,
/// discovery, first list).
const WARM_UP: Duration = Duration::from_secs(300);

/// What every run shares (the command line's flags).
pub struct Settings {
    pub workers: u16,
    pub namespaces: usize,
    pub object_bytes: usize,
    pub qps: Option<f64>,
}

/// A control plane of one run, stopped (processes gone, data removed)
/// when dropped: after a run, on an error, on Ctrl-C.
struct Cluster(ControlPlane);

impl Drop for Cluster {
    fn drop(&mut self) {
        self.0.down_blocking();
    }
}

/// The controller under test, killed when dropped.
enum Running {
    Host(Host),
    Peer(Peer),
}

impl Running {
    fn start(controller: Controller, cluster: &ControlPlane, settings: &Settings) -> Running {
        let workers = settings.workers.to_string();
        let qps = settings.qps.map(|q| q.to_string());
        let peer_args = |extra: &[&'static str]| {
            let mut args: Vec<&str> = vec!["--workers", &workers];
            args.extend_from_slice(extra);
            if let Some(qps) = &qps {
                args.extend(["--qps", qps]);
            }
            args
        };
        match controller {
            Controller::Kubewasm => {
                // Info logs only: a debug line per reconcile would be part
                // of the cost.
                let mut args = vec!["--concurrency", &workers, "--log", "info"];
                if let Some(qps) = &qps {
                    args.extend(["--kube-qps", qps, "--kube-burst", qps]);
                }
                Running::Host(Host::start_on(cluster, &[("bench-labeller", None)], &args))
            }
            Controller::KubeRs => Running::Peer(Peer::spawn(
                "kube-rs-labeller",
                peers::kube_rs_binary(),
                cluster,
                &peer_args(&[]),
            )),
            Controller::KubeRsStripped => Running::Peer(Peer::spawn(
                "kube-rs-labeller --strip-managed-fields",
                peers::kube_rs_binary(),
                cluster,
                &peer_args(&["--strip-managed-fields"]),
            )),
            Controller::Go => Running::Peer(Peer::spawn(
                "go-labeller",
                peers::go_binary(),
                cluster,
                &peer_args(&[]),
            )),
        }
    }

    fn pid(&self) -> u32 {
        match self {
            Running::Host(host) => host.pid(),
            Running::Peer(peer) => peer.pid(),
        }
    }

    /// The last lines of its log, for an error message.
    fn log_tail(&self) -> String {
        let log = match self {
            Running::Host(host) => host.log(),
            Running::Peer(peer) => peer.log(),
        };
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn cpu_seconds(&self) -> anyhow::Result<f64> {
        process::cpu_seconds(self.pid()).with_context(|| {
            format!(
                "the controller (pid {}) is gone; its log ends:\n{}",
                self.pid(),
                self.log_tail()
            )
        })
    }
}

fn namespace(i: usize) -> String {
    format!("bench-{i:02}")
}

/// A ConfigMap of about `bytes` of data in four keys (a properties file cut
/// to size), so every run writes the same objects.
fn config_map(name: &str, bytes: usize) -> ConfigMap {
    let text = "color=blue\nreplicas=3\nlog.level=info\n".repeat(bytes / 32 + 1);
    let data = (0..4)
        .map(|k| (format!("part-{k}.properties"), text[..bytes / 4].to_owned()))
        .collect();
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    }
}

/// Creates `cm`, retrying (up to 5 times, 0.1 s doubling) what a loaded
/// machine makes fail for a moment: a 5xx from the API server (its etcd
/// connection dropped) or no answer. A retry that finds the object there
/// (the first try landed) is done.
async fn create(api: &Api<ConfigMap>, cm: &ConfigMap) -> Result<(), kube::Error> {
    let mut delay = Duration::from_millis(100);
    for attempt in 1.. {
        match api.create(&PostParams::default(), cm).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if attempt > 1 && s.is_already_exists() => return Ok(()),
            Err(kube::Error::Api(s)) if s.code >= 500 && attempt < 5 => {
                eprintln!(
                    "sidebyside: create failed, retrying: {} {}",
                    s.code, s.message
                );
            }
            Err(e @ (kube::Error::HyperError(_) | kube::Error::Service(_))) if attempt < 5 => {
                eprintln!("sidebyside: create failed, retrying: {e}");
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    unreachable!("the loop returns")
}

/// When each object of the burst was sent and first seen labelled.
struct Timeline {
    sent: Vec<Option<Instant>>,
    labelled: Vec<Option<Instant>>,
    seen: usize,
}

/// The burst's object index of a name `cm-NNNNNN`.
fn index(name: &str) -> Option<usize> {
    name.strip_prefix("cm-")?.parse().ok()
}

/// Watches labelled ConfigMaps in every namespace (metadata only, so the
/// bench decodes little), recording when each object of the burst is first
/// seen; `ready` fires once the initial list is done. Ends when all are seen.
fn watch_labels(
    client: kube::Client,
    timeline: Arc<Mutex<Timeline>>,
    ready: oneshot::Sender<()>,
) -> tokio::task::JoinHandle<()> {
    let api: Api<PartialObjectMeta<ConfigMap>> = Api::all(client);
    let config = watcher::Config::default().labels(&format!("{LABEL}={VALUE}"));
    let mut ready = Some(ready);
    tokio::spawn(async move {
        let stream = watcher(api, config).default_backoff();
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let now = Instant::now();
            let object = match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
                Ok(watcher::Event::InitDone) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                    continue;
                }
                Ok(_) => continue,
                Err(e) => {
                    eprintln!("sidebyside: the bench's watch failed (retrying): {e}");
                    continue;
                }
            };
            let Some(i) = object.metadata.name.as_deref().and_then(index) else {
                continue;
            };
            let mut t = timeline.lock().unwrap();
            if i < t.labelled.len() && t.labelled[i].is_none() {
                t.labelled[i] = Some(now);
                t.seen += 1;
                if t.seen == t.labelled.len() {
                    return;
                }
            }
        }
    })
}

/// Aborts a task when dropped (the watch, when a run ends early).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One run: `controller` on a fresh control plane in `dir` labels a burst of
/// `objects` ConfigMaps. Everything it started is stopped when it returns.
pub async fn measure(
    controller: Controller,
    objects: usize,
    repeat: usize,
    settings: &Settings,
    dir: &Path,
) -> anyhow::Result<Run> {
    let load = process::load_average();
    println!(
        "sidebyside: {} N={objects} run {repeat}: load average {load}",
        controller.name()
    );
    let cluster = Cluster(ControlPlane::start_at(dir.to_path_buf(), &[]).await?);
    let cp = &cluster.0;
    let client = cp.client().await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for i in 0..settings.namespaces {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace(i)),
                ..Default::default()
            },
            ..Default::default()
        };
        namespaces.create(&PostParams::default(), &ns).await?;
    }
    let apis: Vec<Api<ConfigMap>> = (0..settings.namespaces)
        .map(|i| Api::namespaced(client.clone(), &namespace(i)))
        .collect();

    let running = Running::start(controller, cp, settings);

    // The controller is synced and writing once it labels a first object.
    apis[0]
        .create(
            &PostParams::default(),
            &config_map("warm-up", settings.object_bytes),
        )
        .await?;
    eventually(WARM_UP, || async {
        let cm = apis[0].get("warm-up").await?;
        let labels = cm.metadata.labels.unwrap_or_default();
        anyhow::ensure!(
            labels.get(LABEL).is_some_and(|v| v == VALUE),
            "warm-up not labelled yet"
        );
        Ok(())
    })
    .await
    .with_context(|| format!("no warm-up label; the log ends:\n{}", running.log_tail()))?;

    let timeline = Arc::new(Mutex::new(Timeline {
        sent: vec![None; objects],
        labelled: vec![None; objects],
        seen: 0,
    }));
    let (ready, watching) = oneshot::channel();
    let watch = watch_labels(client.clone(), timeline.clone(), ready);
    let _abort_watch = AbortOnDrop(watch.abort_handle());
    tokio::time::timeout(Duration::from_secs(60), watching)
        .await
        .context("the bench's watch did not list within 60 s")?
        .context("the bench's watch ended")?;

    let apiserver = cp
        .pid(Component::ApiServer)
        .context("no kube-apiserver pid")?;
    let etcd = cp.pid(Component::Etcd).context("no etcd pid")?;
    let cpu = |pid| process::cpu_seconds(pid).unwrap_or(f64::NAN);
    let before = (running.cpu_seconds()?, cpu(apiserver), cpu(etcd));

    let template = config_map("", settings.object_bytes);
    let start = Instant::now();
    futures::stream::iter(0..objects)
        .map(|i| {
            let api = apis[i % apis.len()].clone();
            let mut cm = template.clone();
            cm.metadata.name = Some(format!("cm-{i:06}"));
            let timeline = timeline.clone();
            async move {
                timeline.lock().unwrap().sent[i] = Some(Instant::now());
                create(&api, &cm).await
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| std::future::ready(Ok(())))
        .await
        .context("creating the burst")?;
    let created = start.elapsed();

    let wait = Duration::from_secs((objects as u64 / 20).max(600));
    if tokio::time::timeout(wait, watch).await.is_err() {
        let seen = timeline.lock().unwrap().seen;
        anyhow::bail!(
            "{seen} of {objects} labelled after {wait:?}; the log ends:\n{}",
            running.log_tail()
        );
    }
    let after = (running.cpu_seconds()?, cpu(apiserver), cpu(etcd));
    let Memory { rss, peak } =
        process::memory(running.pid()).context("the controller's /proc/PID/status")?;
    drop(running);
    drop(cluster);

    let t = timeline.lock().unwrap();
    let mut latencies: Vec<Duration> = t
        .sent
        .iter()
        .zip(&t.labelled)
        .filter_map(|(sent, labelled)| Some(labelled.as_ref()?.duration_since((*sent)?)))
        .collect();
    latencies.sort();
    let last = t.labelled.iter().flatten().max().copied().unwrap_or(start);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let run = Run {
        controller,
        objects,
        repeat,
        load,
        converge_s: last.duration_since(start).as_secs_f64(),
        p50_ms: ms(percentile(&latencies, 50.0)),
        p99_ms: ms(percentile(&latencies, 99.0)),
        cpu_s: after.0 - before.0,
        rss_mib: rss,
        peak_mib: peak,
        apiserver_cpu_s: after.1 - before.1,
        etcd_cpu_s: after.2 - before.2,
    };
    println!(
        "sidebyside: {} N={objects} run {repeat}: created in {:.1} s, converged in {:.1} s, \
         p50 {:.0} ms, p99 {:.0} ms, CPU {:.2} s ({:.3} ms/object), RSS {rss:.1} MiB \
         (peak {peak:.1}), kube-apiserver CPU {:.1} s",
        controller.name(),
        created.as_secs_f64(),
        run.converge_s,
        run.p50_ms,
        run.p99_ms,
        run.cpu_s,
        run.cpu_ms_per_object(),
        run.apiserver_cpu_s,
    );
    Ok(run)
}
