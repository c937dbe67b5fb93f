//! Soak: a large cached set, steady churn and plugin reloads for a long
//! time, through a real `kubewasm run` (release build) and the real control
//! plane. Not a test: it measures, and writes what it measured.
//!
//!     cargo bench -p kubewasm-e2e --bench soak -- \
//!         [--objects 50000] [--minutes 30] [--reload-minutes 5] [--churn 50] [--out DIR]
//!
//! 1. Creates `--objects` ConfigMaps (label `probe.kubewasm.dev/behave=mark`,
//!    `data.n = "0"`) in a fresh namespace.
//! 2. Starts the host with `probe` (settings `{"mark": "v0"}`) confined to the
//!    namespace, client limits raised (`--kube-qps 1000 --kube-burst 1000`).
//! 3. For `--minutes`: every second changes `--churn` random objects' `data.n`
//!    to a fresh value, and one in ten seconds deletes one object and creates
//!    a new one; every `--reload-minutes` rewrites the plugin's settings
//!    (`v1`, `v2`, ...), which reloads it and re-reconciles every object.
//! 4. Every 5 s samples the host's resident memory (`/proc`) and queue depth
//!    (`kubewasm_queue_depth` from `/metrics`).
//! 5. Stops the churn and waits (at most 15 min) until every object carries
//!    the newest mark and echoes its own `data.n`: an object that never does
//!    is a lost reconcile.
//!
//! Writes `soak.csv` and `soak.png` (memory and queue depth over time) to
//! `--out` (default `target/soak`) and prints a summary; the numbers are in
//! `tests/README.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kubewasm_e2e::TestNamespace;
use kubewasm_e2e::host::{Host, sample, use_release_binary};
use kubewasm_e2e::probe::{self, BEHAVE, ECHO, MARK};
use kubewasm_e2e::process;
use plotters::prelude::*;
use serde_json::json;

const SAMPLE_EVERY: Duration = Duration::from_secs(5);

struct Args {
    objects: usize,
    minutes: u64,
    reload_minutes: u64,
    churn: usize,
    out: PathBuf,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
            .cloned()
    };
    let number = |flag: &str, default: u64| {
        value(flag).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{flag} needs a number, not {v:?}"))
        })
    };
    Args {
        objects: number("--objects", 50_000) as usize,
        minutes: number("--minutes", 30),
        reload_minutes: number("--reload-minutes", 5).max(1),
        churn: number("--churn", 50) as usize,
        out: value("--out").map_or_else(
            || kubewasm_e2e::host::repo().join("target/soak"),
            PathBuf::from,
        ),
    }
}

/// One sample of the host.
struct Sample {
    seconds: f64,
    rss_mib: f64,
    queue_depth: f64,
}

fn config_map(name: &str, n: u64) -> ConfigMap {
    let n = n.to_string();
    probe::configmap(
        name,
        "mark",
        &[("n", &n), ("app.properties", "color=blue\nreplicas=3\n")],
    )
}

/// A small deterministic generator (xorshift), so a run is repeatable.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Objects not (yet) reconciled to their newest state by the newest plugin
/// version: the wrong mark, or an echo that is not their `data.n`.
async fn unreconciled(api: &Api<ConfigMap>, mark: &str) -> Vec<String> {
    let mut stale = Vec::new();
    let mut params = ListParams::default().limit(1000);
    loop {
        let page = api.list(&params).await.expect("list ConfigMaps");
        for cm in &page.items {
            let annotations = cm.metadata.annotations.clone().unwrap_or_default();
            let n = cm.data.as_ref().and_then(|d| d.get("n"));
            if cm
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(BEHAVE))
                .is_none()
            {
                continue;
            }
            if annotations.get(MARK).map(String::as_str) != Some(mark) || annotations.get(ECHO) != n
            {
                stale.push(cm.metadata.name.clone().unwrap_or_default());
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return stale,
        }
    }
}

fn plot(path: &std::path::Path, samples: &[Sample]) -> anyhow::Result<()> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, kubewasm_e2e::plot_font()?)
        .map_err(|_| anyhow::anyhow!("the DejaVu font does not load"))?;
    let root = BitMapBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(400);
    let minutes = samples.last().map_or(1.0, |s| s.seconds / 60.0).max(1.0);
    let series = |area: &DrawingArea<BitMapBackend, _>,
                  title: &str,
                  unit: &str,
                  value: &dyn Fn(&Sample) -> f64|
     -> anyhow::Result<()> {
        let max = samples.iter().map(value).fold(1.0_f64, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..minutes, 0.0..max)?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .y_desc(unit)
            .draw()?;
        chart.draw_series(LineSeries::new(
            samples.iter().map(|s| (s.seconds / 60.0, value(s))),
            &BLUE,
        ))?;
        Ok(())
    };
    series(&top, "kubewasm resident memory", "MiB", &|s| s.rss_mib)?;
    series(&bottom, "work queue depth (probe)", "keys", &|s| {
        s.queue_depth
    })?;
    root.present()?;
    Ok(())
}

async fn soak(args: &Args) {
    let ns = TestNamespace::create("soak").await.unwrap();
    let api: Api<ConfigMap> = ns.api();
    let started = Instant::now();
    futures::stream::iter(0..args.objects)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(
                    &PostParams::default(),
                    &config_map(&format!("cm-{i:06}"), 0),
                )
                .await
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<_>>()
        .await
        .expect("creating the objects");
    println!(
        "created {} ConfigMaps in {:.0} s",
        args.objects,
        started.elapsed().as_secs_f64()
    );

    let host = Host::start(
        &ns,
        &[("probe", Some(json!({"mark": "v0"})))],
        &[
            "--namespace",
            ns.name(),
            "--kube-qps",
            "1000",
            "--kube-burst",
            "1000",
            "--log",
            "info",
        ],
    );
    let settings = host.plugin_dir().join("probe.settings.json");
    let admin = host.wait_admin_addr(Duration::from_secs(120)).await;

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut live: Vec<String> = (0..args.objects).map(|i| format!("cm-{i:06}")).collect();
    let mut next_value: u64 = 1;
    let mut next_name = args.objects;
    let mut version = 0;
    let mut samples = Vec::new();
    let begin = Instant::now();
    let end = begin + Duration::from_secs(args.minutes * 60);
    let mut next_sample = begin;
    let mut next_reload = begin + Duration::from_secs(args.reload_minutes * 60);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut seconds = 0u64;
    while Instant::now() < end {
        tick.tick().await;
        seconds += 1;
        // Churn: change data.n of random objects.
        let changes: Vec<(String, u64)> = (0..args.churn.min(live.len()))
            .map(|_| {
                next_value += 1;
                (live[rng.below(live.len())].clone(), next_value)
            })
            .collect();
        futures::stream::iter(changes)
            .map(|(name, n)| {
                let api = api.clone();
                async move {
                    let patch = json!({"data": {"n": n.to_string()}});
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                }
            })
            .buffer_unordered(16)
            .for_each(|r| async move {
                if let Err(e) = r {
                    eprintln!("soak: a change failed: {e}");
                }
            })
            .await;
        if seconds.is_multiple_of(10) && !live.is_empty() {
            let gone = live.swap_remove(rng.below(live.len()));
            let _ = api.delete(&gone, &DeleteParams::default()).await;
            let name = format!("cm-{next_name:06}");
            next_name += 1;
            if api
                .create(&PostParams::default(), &config_map(&name, 0))
                .await
                .is_ok()
            {
                live.push(name);
            }
        }
        let now = Instant::now();
        if now >= next_reload {
            version += 1;
            let tmp = settings.with_extension("tmp");
            std::fs::write(&tmp, json!({"mark": format!("v{version}")}).to_string()).unwrap();
            std::fs::rename(&tmp, &settings).unwrap();
            println!(
                "reload {version} at {:.1} min",
                begin.elapsed().as_secs_f64() / 60.0
            );
            next_reload = now + Duration::from_secs(args.reload_minutes * 60);
        }
        if now >= next_sample {
            let depth = kubewasm_e2e::host::http_get(admin, "/metrics")
                .ok()
                .and_then(|(_, body)| sample(&body, "kubewasm_queue_depth{plugin=\"probe\"}"))
                .unwrap_or(f64::NAN);
            samples.push(Sample {
                seconds: begin.elapsed().as_secs_f64(),
                rss_mib: process::memory(host.pid()).map_or(f64::NAN, |m| m.rss),
                queue_depth: depth,
            });
            next_sample = now + SAMPLE_EVERY;
        }
    }

    // Converge: every object reconciled by the newest version to its newest state.
    let mark = format!("v{version}");
    let deadline = Instant::now() + Duration::from_secs(900);
    let stale = loop {
        let stale = unreconciled(&api, &mark).await;
        if stale.is_empty() || Instant::now() > deadline {
            break stale;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    };

    std::fs::create_dir_all(&args.out).unwrap();
    let mut csv = String::from("seconds,rss_mib,queue_depth\n");
    for s in &samples {
        csv.push_str(&format!(
            "{:.1},{:.1},{}\n",
            s.seconds, s.rss_mib, s.queue_depth
        ));
    }
    std::fs::write(args.out.join("soak.csv"), csv).unwrap();
    if let Err(e) = plot(&args.out.join("soak.png"), &samples) {
        eprintln!("soak: no plot: {e:#}");
    }
    let after_warm_up: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.seconds >= samples.last().map_or(0.0, |l| l.seconds) / 5.0)
        .collect();
    let stat = |f: &dyn Fn(&Sample) -> f64| {
        let values: Vec<f64> = after_warm_up
            .iter()
            .map(|s| f(s))
            .filter(|v| v.is_finite())
            .collect();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(0.0_f64, f64::max);
        (min, max)
    };
    let (rss_min, rss_max) = stat(&|s| s.rss_mib);
    let (_, depth_max) = stat(&|s| s.queue_depth);
    let by_bucket: BTreeMap<u64, f64> = samples
        .iter()
        .map(|s| ((s.seconds / 300.0) as u64, s.rss_mib))
        .collect();
    println!(
        "soak: {} objects, {} min, churn {}/s, {version} reloads",
        args.objects, args.minutes, args.churn
    );
    println!(
        "  host RSS after warm-up (last 80 % of the run): {rss_min:.0}-{rss_max:.0} MiB; queue depth max {depth_max:.0}"
    );
    println!("  RSS at each 5-minute mark: {by_bucket:?}");
    println!(
        "  lost reconciles (objects not at the newest mark and data.n 15 min after the churn stopped): {}",
        stale.len()
    );
    if !stale.is_empty() {
        println!("  e.g. {:?}", &stale[..stale.len().min(10)]);
    }
    println!(
        "  wrote {} and soak.png",
        args.out.join("soak.csv").display()
    );
    drop(host);
    ns.delete().await.unwrap();
}

fn main() {
    let args = args();
    use_release_binary();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(soak(&args));
}
