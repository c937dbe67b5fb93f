//! `sidebyside.png`: 2×2 grouped bars (converge time, p99 latency, CPU per
//! object, resident memory), one group per object count, one bar per
//! controller, each the median of its runs.

use std::path::Path;

use kubewasm_e2e::sidebyside::{Controller, Run};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

fn colour(controller: Controller) -> RGBColor {
    match controller {
        Controller::Kubewasm => RGBColor(31, 119, 180),
        Controller::KubeRs => RGBColor(214, 39, 40),
        Controller::KubeRsStripped => RGBColor(255, 127, 14),
        Controller::Go => RGBColor(44, 160, 44),
    }
}

/// A bar's value printed above it, to about three figures.
fn figure(v: f64) -> String {
    match v {
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => format!("{v:.1}"),
        v if v >= 1.0 => format!("{v:.2}"),
        v => format!("{v:.3}"),
    }
}

/// An axis tick: whole numbers from 10 on, else at most two decimals.
fn tick(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else {
        let text = format!("{v:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// One panel: `value` of each median, grouped by object count.
type Panel<'a> = (&'a str, &'a str, fn(&Run) -> f64);

pub fn plot(path: &Path, medians: &[Run]) -> anyhow::Result<()> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, kubewasm_e2e::plot_font()?)
        .map_err(|_| anyhow::anyhow!("the DejaVu font does not load"))?;

    let mut sizes: Vec<usize> = medians.iter().map(|r| r.objects).collect();
    sizes.dedup();
    let controllers: Vec<Controller> = Controller::ALL
        .into_iter()
        .filter(|c| medians.iter().any(|r| r.controller == *c))
        .collect();
    // A slot per controller and one empty slot between groups.
    let slots = controllers.len() + 1;
    let slot = |objects: usize, controller: Controller| -> usize {
        let g = sizes.iter().position(|&n| n == objects).unwrap_or(0);
        let c = controllers
            .iter()
            .position(|&c| c == controller)
            .unwrap_or(0);
        g * slots + c
    };

    let panels: [Panel; 4] = [
        ("time to converge", "seconds", |r| r.converge_s),
        ("p99 create → label seen", "ms", |r| r.p99_ms),
        ("controller CPU per object", "ms", |r| r.cpu_ms_per_object()),
        ("controller resident memory after converge", "MiB", |r| {
            r.rss_mib
        }),
    ];
    let root = BitMapBackend::new(path, (1400, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    for (area, (title, unit, value)) in root.split_evenly((2, 2)).iter().zip(panels) {
        let max = medians
            .iter()
            .map(value)
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max)
            .max(1e-3)
            // Headroom for the values above the bars and the legend.
            * 1.6;
        let label_slot = controllers.len() / 2;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d((0..sizes.len() * slots - 1).into_segmented(), 0.0..max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .max_light_lines(1)
            .x_labels(sizes.len() * slots)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(x) if x % slots == label_slot => {
                    format!("N = {}", sizes[x / slots])
                }
                _ => String::new(),
            })
            .y_label_formatter(&|v| tick(*v))
            .y_desc(unit)
            .draw()?;
        for &controller in &controllers {
            let rows: Vec<&Run> = medians
                .iter()
                .filter(|r| r.controller == controller)
                .collect();
            let fill = colour(controller).filled();
            chart
                .draw_series(rows.iter().map(|r| {
                    let x = slot(r.objects, controller);
                    let mut bar = Rectangle::new(
                        [
                            (SegmentValue::Exact(x), 0.0),
                            (SegmentValue::Exact(x + 1), value(r)),
                        ],
                        fill,
                    );
                    bar.set_margin(0, 0, 3, 3);
                    bar
                }))?
                .label(controller.name())
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], fill));
            chart.draw_series(rows.iter().map(|r| {
                Text::new(
                    figure(value(r)),
                    (SegmentValue::Exact(slot(r.objects, controller)), value(r)),
                    ("sans-serif", 13)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Left, VPos::Bottom)),
                )
            }))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.85))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
