//! `deploy/monitoring/` (offline: the Prometheus Operator's CRDs are not
//! installed): the monitoring objects agree with each other and name only
//! metrics the host exports; promtool accepts the rules, their unit tests
//! and the dashboard's queries.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::process::Command;

use anyhow::{Context, bail, ensure};
use kubewasm_e2e::deploy::{
    NAMESPACE, deploy_dir, kubectl_offline, read, yaml_documents, yaml_file,
};
use kubewasm_e2e::host::repo;
use serde_json::Value;

/// The metrics the dashboard shows and the alerts may read (host/src/ops/metrics.rs
/// exports a few more, not yet on the dashboard), and whether each is a
/// histogram (whose series are `_bucket`, `_sum` and `_count`).
const METRICS: &[(&str, bool)] = &[
    ("kubewasm_events_received_total", false),
    ("kubewasm_queue_depth", false),
    ("kubewasm_queue_latency_seconds", true),
    ("kubewasm_reconcile_duration_seconds", true),
    ("kubewasm_reconciles_total", false),
    ("kubewasm_intents_total", false),
    ("kubewasm_watch_restarts_total", false),
    ("kubewasm_relists_total", false),
    ("kubewasm_objects_undecodable_total", false),
    ("kubewasm_cached_objects", false),
    ("kubewasm_plugin_loads_total", false),
    ("kubewasm_plugin_load_failing", false),
    ("kubewasm_plugin_info", false),
    ("kubewasm_leader", false),
];

/// The values of `kubewasm_reconciles_total{result}`.
const RECONCILE_RESULTS: &[&str] = &[
    "ok",
    "error",
    "trap",
    "timeout",
    "memory_limit",
    "result_too_large",
    "malformed_intent",
    "refused",
    "apply_failed",
    "conflict",
    "loop",
];

/// The alerts `deploy/monitoring/rules.yaml` promises.
const ALERTS: &[&str] = &[
    "KubewasmReconcileErrors",
    "KubewasmPluginTraps",
    "KubewasmObjectsUndecodable",
    "KubewasmPluginReloadFailing",
    "KubewasmNoLeader",
    "KubewasmQueueGrowing",
];

/// with a histogram's `_bucket`/`_sum`/`_count` suffix removed.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("kubewasm_") {
        let preceded_by_ident = rest[..at].chars().next_back().is_some_and(is_ident);
        let tail = &rest[at..];
        let end = tail.find(|c: char| !is_ident(c)).unwrap_or(tail.len());
        let name = &tail[..end];
        rest = &tail[end..];
        if preceded_by_ident {
            continue;
        }
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| METRICS.contains(&(base, true)))
            .unwrap_or(name);
        names.insert(base.to_string());
    }
    names
}

fn known_metrics() -> BTreeSet<String> {
    METRICS.iter().map(|(name, _)| name.to_string()).collect()
}

/// deploy/monitoring/rules.yaml as JSON.
fn rules_file() -> anyhow::Result<Value> {
    yaml_file(&deploy_dir().join("monitoring/rules.yaml"))
}

fn alert_rules(groups: &Value) -> Vec<&Value> {
    groups
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect()
}

/// Every PromQL expression of the dashboard: panel targets and variable
/// queries.
fn dashboard_expressions(dashboard: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                        ("query", Value::String(s)) if s.contains("kubewasm_") => {
                            out.push(s.clone())
                        }
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

fn dashboard() -> anyhow::Result<Value> {
    let path = deploy_dir().join("monitoring/grafana-dashboard.json");
    serde_json::from_str(&read(&path)?).with_context(|| format!("{}: invalid JSON", path.display()))
}

#[test]
fn monitoring_kustomization_carries_the_rules_file_and_scrapes_the_admin_port() -> anyhow::Result<()>
{
    let rendered = kubectl_offline(&["kustomize", "deploy/monitoring/"])?;
    let objects = yaml_documents(&rendered, "kubectl kustomize deploy/monitoring/")?;
    let kinds: BTreeSet<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["ConfigMap", "PrometheusRule", "ServiceMonitor"])
    );
    let of_kind = |kind: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind)
            .with_context(|| format!("no {kind}"))
    };
    for object in &objects {
        assert_eq!(object["metadata"]["namespace"], NAMESPACE, "{object}");
    }

    // The PrometheusRule carries rules.yaml's groups, unchanged.
    let rules = rules_file()?;
    let carried = &of_kind("PrometheusRule")?["spec"]["groups"];
    if carried != &rules["groups"] {
        let (ours, theirs) = (alert_rules(carried), alert_rules(&rules["groups"]));
        let first_difference = (0..ours.len().max(theirs.len()))
            .find(|&i| ours.get(i) != theirs.get(i))
            .and_then(|i| ours.get(i).or(theirs.get(i)))
            .map_or("the groups".into(), |r| r["alert"].to_string());
        bail!(
            "prometheusrule.yaml and rules.yaml differ (first in {first_difference}): \
             regenerate prometheusrule.yaml with the command in its header"
        );
    }

    // The ServiceMonitor selects the base's metrics Service, on its port.
    let base = yaml_documents(&kubectl_offline(&["kustomize", "deploy/"])?, "deploy/")?;
    let service = base
        .iter()
        .find(|o| o["kind"] == "Service")
        .context("the base has no Service")?;
    let monitor = of_kind("ServiceMonitor")?;
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .context("ServiceMonitor without matchLabels")?;
    ensure!(!selector.is_empty(), "empty ServiceMonitor selector");
    for (key, value) in selector {
        assert_eq!(
            &service["metadata"]["labels"][key], value,
            "Service label {key}"
        );
    }
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["path"], "/metrics");
    let port = endpoint["port"].as_str().context("endpoint without port")?;
    let service_ports = service["spec"]["ports"]
        .as_array()
        .context("Service without ports")?;
    assert!(
        service_ports.iter().any(|p| p["name"] == port),
        "the Service has no port {port}: {service_ports:?}"
    );

    // The dashboard ConfigMap is the dashboard file, for Grafana's sidecar.
    let dashboard_cm = of_kind("ConfigMap")?;
    assert_eq!(dashboard_cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let embedded: Value = serde_json::from_str(
        dashboard_cm["data"]["kubewasm.json"]
            .as_str()
            .context("no kubewasm.json in the dashboard ConfigMap")?,
    )?;
    assert_eq!(embedded, dashboard()?);
    Ok(())
}

#[test]
fn alerts_use_only_exported_metrics_and_tell_what_to_do() -> anyhow::Result<()> {
    let rules = rules_file()?;
    let groups = rules["groups"]
        .as_array()
        .context("rules.yaml without groups")?;
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["name"], "kubewasm");
    let alerts = alert_rules(&rules["groups"]);
    let names: Vec<&str> = alerts.iter().filter_map(|r| r["alert"].as_str()).collect();
    assert_eq!(names, ALERTS);

    let known = known_metrics();
    for alert in alerts {
        let name = alert["alert"].as_str().unwrap_or_default();
        let expr = alert["expr"].as_str().context("alert without expr")?;
        let used = metrics_in(expr);
        ensure!(!used.is_empty(), "{name} reads no kubewasm metric: {expr}");
        let unknown: Vec<_> = used.difference(&known).collect();
        ensure!(
            unknown.is_empty(),
            "{name} reads unknown metrics {unknown:?}"
        );
        // Every result value an expression names is one the host reports.
        for part in expr.split("result").skip(1) {
            let Some(values) = part
                .strip_prefix("=~\"")
                .or_else(|| part.strip_prefix("!=\""))
                .or_else(|| part.strip_prefix("=\""))
                .and_then(|v| v.split('"').next())
            else {
                continue;
            };
            for value in values.split('|') {
                ensure!(
                    RECONCILE_RESULTS.contains(&value),
                    "{name}: result {value:?} is not a reconcile result"
                );
            }
        }
        let severity = alert["labels"]["severity"].as_str().unwrap_or_default();
        ensure!(
            ["warning", "critical"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        for annotation in ["summary", "description"] {
            let text = alert["annotations"][annotation]
                .as_str()
                .unwrap_or_default();
            ensure!(text.len() > 20, "{name}: no useful {annotation}: {text:?}");
        }
    }
    Ok(())
}

#[test]
fn dashboard_shows_every_exported_metric_and_no_other() -> anyhow::Result<()> {
    let dashboard = dashboard()?;
    let expressions = dashboard_expressions(&dashboard);
    ensure!(!expressions.is_empty(), "the dashboard has no queries");
    let used: BTreeSet<String> = expressions.iter().flat_map(|e| metrics_in(e)).collect();
    let known = known_metrics();
    let unknown: Vec<_> = used.difference(&known).collect();
    let missing: Vec<_> = known.difference(&used).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard reads unknown metrics {unknown:?}"
    );
    assert!(
        missing.is_empty(),
        "the dashboard has no panel for {missing:?}"
    );

    // Grafana needs unique panel ids and a title on every panel.
    let panels = dashboard["panels"].as_array().context("no panels")?;
    let ids: BTreeSet<_> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are missing or repeated");
    assert!(
        panels
            .iter()
            .all(|p| p["title"].as_str().is_some_and(|t| !t.is_empty()))
    );
    Ok(())
}

/// Replaces Grafana's variables so a dashboard query is plain PromQL.
fn as_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__range", "1h")
        .replace("$namespace", ".*")
        .replace("$plugin", ".*")
}

#[test]
fn promtool_accepts_the_rules_their_tests_and_the_dashboard_queries() -> anyhow::Result<()> {
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("promtool").is_file())
    });
    // tests/run.sh installs Debian's prometheus package; without promtool
    // the rules would go unchecked, so this fails rather than skips.
    ensure!(
        on_path,
        "promtool is not on PATH: install Debian's prometheus package (tests/run.sh does)"
    );
    let promtool = |args: &[&OsStr]| -> anyhow::Result<()> {
        let output = Command::new("promtool")
            .args(args)
            .current_dir(repo())
            .output()
            .context("failed to run promtool")?;
        ensure!(
            output.status.success(),
            "promtool {:?} failed:\n{}{}",
            args,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    };
    let os = |s: &'static str| OsStr::new(s);
    promtool(&[os("check"), os("rules"), os("deploy/monitoring/rules.yaml")])?;
    promtool(&[
        os("test"),
        os("rules"),
        os("deploy/monitoring/rules.test.yaml"),
    ])?;

    // Every dashboard query parses: check them as recording rules.
    let records: Vec<Value> = dashboard_expressions(&dashboard()?)
        .iter()
        .filter(|e| !e.starts_with("label_values("))
        .enumerate()
        .map(|(i, expr)| serde_json::json!({"record": format!("dashboard:query_{i}"), "expr": as_promql(expr)}))
        .collect();
    let file = tempfile::Builder::new().suffix(".yaml").tempfile()?;
    let text = serde_yaml::to_string(
        &serde_json::json!({"groups": [{"name": "dashboard", "rules": records}]}),
    )?;
    std::fs::write(file.path(), text)?;
    promtool(&[os("check"), os("rules"), file.path().as_os_str()])
        .context("a dashboard query is not valid PromQL")?;
    Ok(())
}
