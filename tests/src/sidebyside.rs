//! The side-by-side benchmark's results (`benches/sidebyside.rs`,
//! docs/design/performance.md §1.2): the controllers it compares, what one
//! run measured, the CSV it writes and the table of medians it prints.

use std::fmt::Write as _;
use std::time::Duration;

/// A controller the benchmark runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Controller {
    /// `kubewasm run` with `plugins/bench-labeller`.
    Kubewasm,
    /// The kube-rs `Controller` peer as kube-rs' examples build it.
    KubeRs,
    /// The kube-rs peer with `--strip-managed-fields`.
    KubeRsStripped,
    /// The client-go dynamic-informer peer.
    Go,
}

impl Controller {
    pub const ALL: [Controller; 4] = [
        Controller::Kubewasm,
        Controller::KubeRs,
        Controller::KubeRsStripped,
        Controller::Go,
    ];

    /// Its name on the command line, in the CSV and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Kubewasm => "kubewasm",
            Controller::KubeRs => "kube-rs",
            Controller::KubeRsStripped => "kube-rs-stripped",
            Controller::Go => "go",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// What one run measured: one controller, one burst of `objects`.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub controller: Controller,
    pub objects: usize,
    /// 1-based repetition (for medians: how many runs were combined).
    pub repeat: usize,
    /// The machine's load average when the run started (1, 5, 15 min).
    pub load: String,
    /// First create sent → last object seen labelled, seconds.
    pub converge_s: f64,
    /// Create sent → label seen, per object.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The controller's CPU seconds (user + system) over the burst.
    pub cpu_s: f64,
    /// The controller's resident memory once all were labelled, and its peak.
    pub rss_mib: f64,
    pub peak_mib: f64,
    /// kube-apiserver's and etcd's CPU seconds over the burst.
    pub apiserver_cpu_s: f64,
    pub etcd_cpu_s: f64,
}

/// The CSV's first line; [`Run::csv_row`] writes the others.
pub const CSV_HEADER: &str = "controller,objects,repeat,load_average,converge_s,objects_per_s,\
p50_ms,p99_ms,cpu_s,cpu_ms_per_object,rss_mib,peak_mib,apiserver_cpu_s,etcd_cpu_s";

impl Run {
    pub fn objects_per_s(&self) -> f64 {
        self.objects as f64 / self.converge_s
    }

    pub fn cpu_ms_per_object(&self) -> f64 {
        self.cpu_s * 1000.0 / self.objects as f64
    }

    pub fn csv_row(&self) -> String {
        format!(
            "{},{},{},{},{:.3},{:.1},{:.1},{:.1},{:.2},{:.4},{:.1},{:.1},{:.2},{:.2}",
            self.controller.name(),
            self.objects,
            self.repeat,
            self.load,
            self.converge_s,
            self.objects_per_s(),
            self.p50_ms,
            self.p99_ms,
            self.cpu_s,
            self.cpu_ms_per_object(),
            self.rss_mib,
            self.peak_mib,
            self.apiserver_cpu_s,
            self.etcd_cpu_s,
        )
    }

    /// A row [`csv_row`](Self::csv_row) wrote (the derived columns are
    /// computed again, not read).
    pub fn from_csv_row(line: &str) -> Option<Run> {
        let f: Vec<&str> = line.trim().split(',').collect();
        if f.len() != CSV_HEADER.split(',').count() {
            return None;
        }
        let n = |i: usize| f[i].parse::<f64>().ok();
        Some(Run {
            controller: Controller::parse(f[0])?,
            objects: f[1].parse().ok()?,
            repeat: f[2].parse().ok()?,
            load: f[3].to_owned(),
            converge_s: n(4)?,
            p50_ms: n(6)?,
            p99_ms: n(7)?,
            cpu_s: n(8)?,
            rss_mib: n(10)?,
            peak_mib: n(11)?,
            apiserver_cpu_s: n(12)?,
            etcd_cpu_s: n(13)?,
        })
    }

    /// The median of each measure over `runs` (all of one controller and
    /// size); `repeat` is how many runs there were.
    pub fn median_of(runs: &[&Run]) -> Run {
        let first = runs.first().expect("at least one run");
        let m = |f: fn(&Run) -> f64| median(runs.iter().map(|r| f(r)).collect());
        Run {
            controller: first.controller,
            objects: first.objects,
            repeat: runs.len(),
            load: first.load.clone(),
            converge_s: m(|r| r.converge_s),
            p50_ms: m(|r| r.p50_ms),
            p99_ms: m(|r| r.p99_ms),
            cpu_s: m(|r| r.cpu_s),
            rss_mib: m(|r| r.rss_mib),
            peak_mib: m(|r| r.peak_mib),
            apiserver_cpu_s: m(|r| r.apiserver_cpu_s),
            etcd_cpu_s: m(|r| r.etcd_cpu_s),
        }
    }
}

/// The median (the mean of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The `p`th percentile (nearest rank) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The medians per object count and controller, in the order the runs came.
pub fn medians(runs: &[Run]) -> Vec<Run> {
    let mut keys: Vec<(usize, Controller)> = Vec::new();
    for run in runs {
        if !keys.contains(&(run.objects, run.controller)) {
            keys.push((run.objects, run.controller));
        }
    }
    keys.into_iter()
        .map(|(objects, controller)| {
            let of: Vec<&Run> = runs
                .iter()
                .filter(|r| r.objects == objects && r.controller == controller)
                .collect();
            Run::median_of(&of)
        })
        .collect()
}

/// The table of medians (one block per object count) and the ratios of
/// kubewasm to each other controller; against the plain kube-rs peer with
/// the targets.
pub fn table(runs: &[Run]) -> String {
    let medians = medians(runs);
    let mut sizes: Vec<usize> = medians.iter().map(|r| r.objects).collect();
    sizes.dedup();
    let mut out = String::new();
    for objects in sizes {
        let rows: Vec<&Run> = medians.iter().filter(|r| r.objects == objects).collect();
        let _ = writeln!(
            out,
            "N={objects:<6} {:<17} {:>8} {:>6} {:>7} {:>7} {:>6} {:>10} {:>7} {:>8} {:>13} {:>4}",
            "controller",
            "converge",
            "obj/s",
            "p50 ms",
            "p99 ms",
            "CPU s",
            "CPU ms/obj",
            "RSS MiB",
            "peak MiB",
            "apiserver CPU",
            "runs",
        );
        for r in &rows {
            let _ = writeln!(
                out,
                "{:8} {:<17} {:>7.1}s {:>6.0} {:>7.0} {:>7.0} {:>6.2} {:>10.3} {:>7.1} {:>8.1} {:>12.1}s {:>4}",
                "",
                r.controller.name(),
                r.converge_s,
                r.objects_per_s(),
                r.p50_ms,
                r.p99_ms,
                r.cpu_s,
                r.cpu_ms_per_object(),
                r.rss_mib,
                r.peak_mib,
                r.apiserver_cpu_s,
                r.repeat,
            );
        }
        let Some(kubewasm) = rows.iter().find(|r| r.controller == Controller::Kubewasm) else {
            continue;
        };
        for other in rows.iter().filter(|r| r.controller != Controller::Kubewasm) {
            let rss = kubewasm.rss_mib / other.rss_mib;
            let cpu = kubewasm.cpu_ms_per_object() / other.cpu_ms_per_object();
            let (rss_target, cpu_target) = if other.controller == Controller::KubeRs {
                (" (target ≤ 0.50)", " (target ≤ 1.10)")
            } else {
                ("", "")
            };
            let _ = writeln!(
                out,
                "{:8} ratios kubewasm / {}: RSS {rss:.2}×{rss_target}  CPU/obj {cpu:.2}×{cpu_target}",
                "",
                other.controller.name(),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(controller: Controller, converge_s: f64, cpu_s: f64, rss_mib: f64) -> Run {
        Run {
            controller,
            objects: 1000,
            repeat: 1,
            load: "0.50 0.40 0.30".into(),
            converge_s,
            p50_ms: 100.0,
            p99_ms: 200.0,
            cpu_s,
            rss_mib,
            peak_mib: rss_mib + 10.0,
            apiserver_cpu_s: 5.0,
            etcd_cpu_s: 1.0,
        }
    }

    #[test]
    fn medians_take_the_middle_of_each_measure() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        let runs = [
            run(Controller::Go, 3.0, 0.9, 50.0),
            run(Controller::Go, 1.0, 0.3, 70.0),
            run(Controller::Go, 2.0, 0.6, 60.0),
        ];
        let m = Run::median_of(&runs.iter().collect::<Vec<_>>());
        assert_eq!(
            (m.converge_s, m.cpu_s, m.rss_mib, m.repeat),
            (2.0, 0.6, 60.0, 3)
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&sorted[..1], 99.0), Duration::from_millis(1));
    }

    #[test]
    fn the_table_names_each_ratio_and_its_divisor() {
        let runs = [
            run(Controller::Kubewasm, 2.0, 0.6, 40.0),
            run(Controller::KubeRs, 2.0, 0.4, 80.0),
            run(Controller::Go, 2.0, 0.3, 50.0),
        ];
        let table = table(&runs);
        assert!(
            table.contains("ratios kubewasm / kube-rs: RSS 0.50× (target ≤ 0.50)  CPU/obj 1.50× (target ≤ 1.10)"),
            "{table}"
        );
        assert!(
            table.contains("ratios kubewasm / go: RSS 0.80×  CPU/obj 2.00×"),
            "{table}"
        );
        assert!(table.contains("0.600"), "CPU ms per object: {table}");
        let row = runs[0].csv_row();
        assert_eq!(row.split(',').count(), CSV_HEADER.split(',').count());
        assert!(row.starts_with("kubewasm,1000,1,0.50 0.40 0.30,2.000,500.0,"));
        assert_eq!(Run::from_csv_row(&row), Some(runs[0].clone()));
        assert_eq!(Run::from_csv_row(CSV_HEADER), None);
    }

    #[test]
    fn controllers_parse_by_name() {
        for c in Controller::ALL {
            assert_eq!(Controller::parse(c.name()), Some(c));
        }
        assert_eq!(Controller::parse("kopf"), None);
    }
}
