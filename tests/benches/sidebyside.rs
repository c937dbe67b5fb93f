//! Side by side (docs/design/performance.md §1): kubewasm and native
//! controllers doing the same labelling work, each on a fresh control plane.
//! Not a test: it measures, and writes what it measured.
//!
//!     cargo bench -p kubewasm-e2e --bench sidebyside -- [--objects 10000,50000]
//!         [--workers 16] [--namespaces 10] [--object-bytes 2048] [--qps none|N]
//!         [--controllers kubewasm,kube-rs,kube-rs-stripped,go] [--repeat 3] [--out DIR]
//!
//! The controllers: `kubewasm run --concurrency W` (release build, or
//! `$KUBEWASM_BIN`) with `plugins/bench-labeller` (from `plugins/build.sh`,
//! or `$KUBEWASM_PLUGIN_DIR`); the kube-rs `Controller` peer
//! (`tests/peers/kube-rs-labeller`, release build or `$KUBEWASM_PEER_KUBE_RS`)
//! plain and with `--strip-managed-fields`; the client-go peer
//! (`tests/peers/go-labeller`, built by `tests/peers/build.sh` or
//! `$KUBEWASM_PEER_GO`). Each watches ConfigMaps in all namespaces and
//! labels every one `bench.kubewasm.dev/seen=true` by server-side apply with
//! W workers and no client rate limit (unless `--qps N`).
//!
//! For each object count, repetition and controller (controllers interleaved,
//! so a busier minute of the machine does not fall on one of them): a
//! control plane of its own (`cluster.sh up`) with namespaces `bench-00`…;
//! the controller started; a warm-up ConfigMap labelled (it is synced and
//! writing); its CPU time and kube-apiserver's and etcd's read from
//! `/proc/PID/stat`; N ConfigMaps of `--object-bytes` of data created across
//! the namespaces, 32 requests in flight, while the bench's watch records
//! create sent → label seen per object; once all are labelled, CPU again and
//! the controller's `VmRSS` (all N cached) and `VmHWM` (peak). Then the
//! controller is killed and the control plane stopped, on errors and Ctrl-C
//! too.
//!
//! Prints each run, then the medians per controller and N with the ratios of
//! kubewasm to each peer (a run that fails is reported, left out, and makes
//! the exit status non-zero); writes `DIR/sidebyside.csv` (a row per run, after
//! every run) and `DIR/sidebyside.png` (default DIR `target/sidebyside`).
//! `--replot A.csv,B.csv --out DIR` runs nothing: it prints the table of
//! those CSVs' rows and writes them, together, to `DIR` with their plot.
//! Recorded runs are in `docs/benchmarks.md`.

#[path = "sidebyside/plot.rs"]
mod plot;
#[path = "sidebyside/run.rs"]
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use kubewasm_e2e::host::{repo, use_release_binary};
use kubewasm_e2e::peers;
use kubewasm_e2e::sidebyside::{CSV_HEADER, Controller, Run, medians, table};
use run::Settings;
use tokio::signal::unix::{SignalKind, signal};

struct Args {
    /// `--replot CSV,...`: no runs, the table and plot of these CSVs' rows.
    replot: Vec<PathBuf>,
    objects: Vec<usize>,
    controllers: Vec<Controller>,
    repeat: usize,
    out: PathBuf,
    settings: Settings,
}

const USAGE: &str = "usage: cargo bench -p kubewasm-e2e --bench sidebyside -- \
[--objects 10000,50000] [--workers 16] [--namespaces 10] [--object-bytes 2048] \
[--qps none|N] [--controllers kubewasm,kube-rs,kube-rs-stripped,go] [--repeat 3] [--out DIR] \
| [--replot CSV,... --out DIR]";

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut args = Args {
        replot: Vec::new(),
        objects: vec![10_000, 50_000],
        controllers: Controller::ALL.to_vec(),
        repeat: 3,
        out: repo().join("target/sidebyside"),
        settings: Settings {
            workers: 16,
            namespaces: 10,
            object_bytes: 2048,
            qps: None,
        },
    };
    fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
        v.parse()
            .map_err(|_| format!("{flag} needs a number, not {v:?}"))
    }
    let mut words = argv.iter();
    while let Some(flag) = words.next() {
        // `cargo bench` passes `--bench` to every bench binary.
        if flag == "--bench" {
            continue;
        }
        let value = words
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--objects" => {
                args.objects = value
                    .split(',')
                    .map(|n| number(flag, n))
                    .collect::<Result<_, _>>()?
            }
            "--workers" => args.settings.workers = number(flag, value)?,
            "--namespaces" => args.settings.namespaces = number(flag, value)?,
            "--object-bytes" => args.settings.object_bytes = number(flag, value)?,
            "--qps" if value == "none" => args.settings.qps = None,
            "--qps" => args.settings.qps = Some(number(flag, value)?),
            "--controllers" => {
                args.controllers = value
                    .split(',')
                    .map(|c| Controller::parse(c).ok_or_else(|| format!("no controller {c:?}")))
                    .collect::<Result<_, _>>()?
            }
            "--repeat" => args.repeat = number(flag, value)?,
            "--out" => args.out = PathBuf::from(value),
            "--replot" => args.replot = value.split(',').map(PathBuf::from).collect(),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.objects.contains(&0) || args.repeat == 0 || args.settings.namespaces == 0 {
        return Err("--objects, --repeat and --namespaces must be positive".into());
    }
    if args.settings.workers == 0
        || args
            .settings
            .qps
            .is_some_and(|q| q <= 0.0 || !q.is_finite())
    {
        return Err("--workers and --qps must be positive".into());
    }
    Ok(args)
}

/// The runs recorded in earlier CSVs (e.g. one of 10,000 and one of 50,000
/// objects, for one plot of both).
fn read_runs(csvs: &[PathBuf]) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for csv in csvs {
        let text = std::fs::read_to_string(csv)
            .map_err(|e| anyhow::anyhow!("failed to read {}: {e}", csv.display()))?;
        for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            runs.push(Run::from_csv_row(line).ok_or_else(|| {
                anyhow::anyhow!("{}: not a sidebyside row: {line}", csv.display())
            })?);
        }
    }
    Ok(runs)
}

fn write_csv(path: &std::path::Path, runs: &[Run]) -> std::io::Result<()> {
    let mut text = format!("{CSV_HEADER}\n");
    for run in runs {
        text.push_str(&run.csv_row());
        text.push('\n');
    }
    std::fs::write(path, text)
}

/// Every run in turn; the CSV rewritten after each, so an interruption
/// keeps what came before it. A run that fails (its error printed) is left
/// out and the others go on; the runs and the count of failures.
async fn bench(args: &Args) -> anyhow::Result<(Vec<Run>, usize)> {
    std::fs::create_dir_all(&args.out)?;
    let csv = args.out.join("sidebyside.csv");
    let mut runs = Vec::new();
    let mut failed = 0;
    for &objects in &args.objects {
        for repeat in 1..=args.repeat {
            for &controller in &args.controllers {
                // Straight in the temporary directory: `cluster.sh down`
                // removes it, and the watchdog's late second `down` (when
                // the run's ControlPlane is dropped) leaves nothing behind.
                let dir = std::env::temp_dir().join(format!(
                    "kubewasm-sidebyside-{}-cp-{}-{objects}-{repeat}",
                    std::process::id(),
                    controller.name()
                ));
                match run::measure(controller, objects, repeat, &args.settings, &dir).await {
                    Ok(run) => runs.push(run),
                    Err(e) => {
                        failed += 1;
                        eprintln!(
                            "sidebyside: {} N={objects} run {repeat} failed: {e:#}",
                            controller.name()
                        );
                        continue;
                    }
                }
                write_csv(&csv, &runs)?;
            }
        }
    }
    Ok((runs, failed))
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("sidebyside: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if !args.replot.is_empty() {
        let replotted = read_runs(&args.replot).and_then(|runs| {
            std::fs::create_dir_all(&args.out)?;
            write_csv(&args.out.join("sidebyside.csv"), &runs)?;
            Ok(runs)
        });
        return match replotted {
            Ok(runs) => report(&args, &runs, 0),
            Err(e) => {
                eprintln!("sidebyside: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // Build (or find) every binary before the first control plane starts.
    if args.controllers.contains(&Controller::Kubewasm) {
        use_release_binary();
        kubewasm_e2e::host::component("bench-labeller");
    }
    if args
        .controllers
        .iter()
        .any(|c| matches!(c, Controller::KubeRs | Controller::KubeRsStripped))
    {
        peers::use_release_kube_rs();
    }
    if args.controllers.contains(&Controller::Go) {
        peers::go_binary();
    }

    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    let outcome = runtime.block_on(async {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        // On a signal the run in progress is dropped: its controller is
        // killed and its control plane stopped before this returns.
        tokio::select! {
            runs = bench(&args) => runs.map(Some),
            _ = interrupt.recv() => Ok(None),
            _ = terminate.recv() => Ok(None),
        }
    });
    let (runs, failed) = match outcome {
        Ok(Some(done)) => done,
        Ok(None) => {
            eprintln!("sidebyside: interrupted; the runs done so far are in the CSV");
            return ExitCode::from(130);
        }
        Err(e) => {
            eprintln!("sidebyside: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    report(&args, &runs, failed)
}

/// Prints the table of medians and draws the plot.
fn report(args: &Args, runs: &[Run], failed: usize) -> ExitCode {
    println!("\n{}", table(runs));
    let png = args.out.join("sidebyside.png");
    if runs.is_empty() {
        eprintln!("sidebyside: no run finished, no plot");
    } else if let Err(e) = plot::plot(&png, &medians(runs)) {
        eprintln!("sidebyside: no plot: {e:#}");
    }
    println!(
        "sidebyside: wrote {} and {}",
        args.out.join("sidebyside.csv").display(),
        png.display()
    );
    if failed > 0 {
        eprintln!("sidebyside: {failed} run(s) failed; see above");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
