//! What the rest of the host asks of the controller through their traits:
//! the admin server's readiness (every informer of a subscribed kind has
//! listed) and state gauges, and the plugin directory's installs.

use crate::ops::admin::HostStatus;
use crate::ops::metrics::Metrics;
use crate::plugins::LoadedPlugin;
use crate::plugins::set::PluginSink;

use super::Controller;

impl HostStatus for Controller {
    fn not_ready(&self) -> Option<String> {
        (!self.informers.all_synced()).then(|| "informers not synced yet".into())
    }

    fn refresh_gauges(&self, metrics: &Metrics) {
        metrics.queue_depth.reset();
        for loaded in self.plugins.all() {
            metrics
                .queue_depth
                .with_label_values(&[loaded.id.as_str()])
                .set(0);
        }
        for (plugin, depth) in self.queue.len_by_group() {
            metrics
                .queue_depth
                .with_label_values(&[plugin.as_str()])
                .set(depth as i64);
        }
        metrics.cached_objects.reset();
        metrics.cache_bytes.reset();
        for (kind, size) in self.informers.cached_sizes() {
            let labels = [kind.group.as_str(), kind.kind.as_str()];
            let gauge =
                |g: &prometheus::IntGaugeVec, n: usize| g.with_label_values(&labels).set(n as i64);
            gauge(&metrics.cached_objects, size.objects);
            gauge(&metrics.cache_bytes, size.bytes);
        }
    }

    fn shadow_report(&self) -> serde_json::Value {
        serde_json::to_value(self.shadows().report()).unwrap_or_default()
    }
}

impl PluginSink for Controller {
    fn install(&self, loaded: LoadedPlugin) {
        Controller::install(self, loaded);
    }

    fn uninstall(&self, name: &str) {
        Controller::uninstall(self, name);
    }
}
