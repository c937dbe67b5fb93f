#!/usr/bin/env bash
# The README's main job: builds the kubewasm host and the example plugins
# (Rust and JavaScript) and checks each component; starts a private Kubernetes
# control plane (tests/control-plane/cluster.sh) and a private OCI registry
# (tests/registry/registry.sh) on loopback; creates sample objects; runs
# `kubewasm run` with three example plugins from a directory and with the
# ClusterPlugin resources on; waits until the plugins have reconciled the
# objects and prints what they did. Then it ships a fourth plugin the
# in-cluster way: `kubewasm push` to the registry, `kubectl apply` of a
# ClusterPlugin, a new build pushed to the same tag and swapped in, new
# settings, and a broken reference that leaves the working version serving.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: tests/demo.sh [--keep] [--no-build]

Builds the host and the example plugins, starts a private control plane and
a private OCI registry, runs the host with label-propagator, website and
configmap-hasher from a directory against sample objects, and prints what
the plugins did. Then it pushes the probe plugin to the registry, applies a
ClusterPlugin for it, swaps in a new build and new settings, and applies a
broken reference. Everything it started is stopped on exit, Ctrl-C included.

  --keep       Leave the control plane, the registry and the host running,
               and print how to use and stop them.
  --no-build   Build nothing: use the host binary and the plugin components
               that are already there (see KUBEWASM_BIN, KUBEWASM_PLUGIN_DIR).

Environment:
  CARGO_TARGET_DIR        host build (default ~/.cache/kubewasm/target)
  KUBEWASM_BIN            a kubewasm binary to use; the host is then not built
                          (default: cargo build --release into CARGO_TARGET_DIR)
  KUBEWASM_PLUGIN_DIR     plugin build output (default plugins/dist)
  KUBEWASM_DEMO_TIMEOUT   seconds to wait for each step (default 120)
EOF
}

keep=0
build=1
for arg in "$@"; do
    case "$arg" in
        --keep) keep=1 ;;
        --no-build) build=0 ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'demo: unknown argument %s (see --help)\n' "$arg" >&2; exit 2 ;;
    esac
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
plugins="${KUBEWASM_PLUGIN_DIR:-$repo/plugins/dist}"
cluster="$repo/tests/control-plane/cluster.sh"
registry="$repo/tests/registry/registry.sh"
timeout="${KUBEWASM_DEMO_TIMEOUT:-120}"
cd "$repo"

if [[ -t 2 ]]; then bold=$'\033[1m' red=$'\033[1;31m' plain=$'\033[0m'; else bold="" red="" plain=""; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain" >&2; }
die() { printf '\n%sdemo: error:%s %s\n' "$red" "$plain" "$*" >&2; exit 1; }
indent() { sed 's/^/    /'; }

[[ "$timeout" =~ ^[1-9][0-9]*$ ]] ||
    die "KUBEWASM_DEMO_TIMEOUT must be a positive number of seconds, not '$timeout'"

# --- cleanup ---------------------------------------------------------------

work=""      # temporary directory: control plane and registry data, plugin directory, host log
cp_dir=""    # the control plane's data directory, once `up` was called
reg_dir=""   # the registry's data directory, once `up` was called
host_pid=""  # the host, once started

stop_host() {
    if [[ -z "$host_pid" ]] || ! kill -0 "$host_pid" 2>/dev/null; then
        return 0
    fi
    kill -TERM "$host_pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$host_pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "demo: the host did not stop within 10 s of SIGTERM; killing it" >&2
    kill -KILL "$host_pid" 2>/dev/null || true
}

print_keep() {
    local q_cluster q_dir q_registry q_reg_dir stop_registry=""
    if [[ -n "$host_pid" ]] && ! kill -0 "$host_pid" 2>/dev/null; then
        host_pid="" # it exited: nothing to stop
    fi
    q_cluster="$(printf '%q' "$cluster")"
    q_dir="$(printf '%q' "$cp_dir")"
    q_registry="$(printf '%q' "$registry")"
    q_reg_dir="$(printf '%q' "$reg_dir")"
    [[ -z "$reg_dir" ]] || stop_registry="$q_registry down --dir $q_reg_dir; "
    step "kept running (--keep)"
    {
        echo "The control plane${reg_dir:+, the registry}${host_pid:+ and the host (pid $host_pid)} are still running. Use them with:"
        echo "  eval \"\$($q_cluster env --dir $q_dir)\"   # KUBECONFIG, and kubectl on PATH"
        echo "  kubectl get configmaps,deployments,websites -n demo --show-labels"
        echo "  kubectl label namespace demo team=payments --overwrite   # label-propagator follows"
        if [[ -n "$reg_dir" ]]; then
            echo "  eval \"\$($q_registry env --dir $q_reg_dir)\"   # KUBEWASM_TEST_REGISTRY*: address, CA, credentials"
            echo "  kubectl get clusterplugins -o wide   # probe: Degraded by the broken reference, the last good build serving"
            echo "  kubectl apply --server-side -f $(printf '%q' "$work/probe.clusterplugin.yaml")   # edit it back to a tag: swapped"
        fi
        if [[ -n "$host_pid" ]]; then
            echo "  tail -f $(printf '%q' "$work/host.log")"
            echo "  # the host watches $(printf '%q' "$work/plugins"): a changed .wasm or settings file is reloaded"
        fi
        echo "Stop them with:"
        echo "  ${host_pid:+kill $host_pid; }$stop_registry$q_cluster down --dir $q_dir; rm -rf $(printf '%q' "$work")"
    } >&2
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if ((keep)) && [[ -n "$cp_dir" ]]; then
        print_keep
        exit "$rc"
    fi
    stop_host
    if [[ -n "$reg_dir" ]]; then
        "$registry" down --dir "$reg_dir" || true
    fi
    if [[ -n "$cp_dir" ]]; then
        "$cluster" down --dir "$cp_dir" || true
    fi
    if [[ -n "$work" ]]; then
        # A failure keeps the host's log; success and Ctrl-C leave nothing.
        if ((rc != 0 && rc != 130 && rc != 143)) && [[ -s "$work/host.log" ]]; then
            echo "demo: the host's log is kept in $work/host.log" >&2
        else
            rm -rf "$work"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "demo: interrupted; stopping what it started" >&2; exit 130' INT
trap 'exit 143' TERM

# --- offline: build and check ----------------------------------------------

kubewasm="${KUBEWASM_BIN:-$CARGO_TARGET_DIR/release/kubewasm}"
if ((build)) && [[ -z "${KUBEWASM_BIN:-}" ]]; then
    step "building the host"
    cargo build --release --locked -p kubewasm
fi
[[ -x "$kubewasm" ]] || die "$kubewasm is not an executable kubewasm binary (see KUBEWASM_BIN, --no-build)"

if ((build)); then
    step "building the example plugins"
    plugins/build.sh "$plugins"
fi

# One line per plugin from `kubewasm check`'s description: what it
# subscribes to and what it may write.
summarize_check() {
    awk '
        /^name:/ { name = $2 }
        /^version:/ { version = $2; gsub(/["\047]/, "", version) }
        /^world:/ { world = $2 }
        /^[a-zA-Z]/ { section = "" }
        /^subscriptions:/ { section = "sub" }
        /^writes:/ { section = "write" }
        /^- group:/ { group = $3; gsub(/["\047]/, "", group) }
        section == "sub" && /^  version:/ { ver = $2 }
        section == "sub" && /^  kind:/ { kind = $2 }
        section == "sub" && /^  labelSelector:/ {
            sel = $0; sub(/^  labelSelector: */, "", sel); gsub(/\047/, "", sel)
            subs = subs (subs ? ", " : "") kind (group ? "." group : "") "/" ver \
                (sel != "null" ? " [" sel "]" : "")
        }
        section == "write" && /^  kind:/ {
            writes = writes (writes ? ", " : "") $2 (group ? "." group : "")
        }
        END {
            printf "%s %s (%s)\n    subscribes: %s\n    writes:     %s\n", name, version, world, subs, writes
        }'
}

step "kubewasm check: each plugin loads in the sandbox and describes itself"
for plugin in label-propagator website configmap-hasher probe; do
    [[ -f "$plugins/$plugin.wasm" ]] || die "$plugins/$plugin.wasm is missing (plugins/build.sh builds it)"
    "$kubewasm" check "$plugins/$plugin.wasm" | summarize_check
done

# --- a private control plane ------------------------------------------------

step "starting a private control plane (kube-apiserver + etcd on 127.0.0.1)"
"$cluster" build
work="$(mktemp -d "${TMPDIR:-/tmp}/kubewasm-demo.XXXXXX")"
cp_dir="$work/cluster"
KUBECONFIG="$("$cluster" up --dir "$cp_dir")"
export KUBECONFIG

step "starting a private OCI registry (CNCF distribution, TLS and basic auth on 127.0.0.1)"
"$registry" build
reg_dir="$work/registry"
# Exports KUBEWASM_TEST_REGISTRY (host:port), its CA, and a dockerconfigjson
# with the run's credentials (KUBEWASM_TEST_REGISTRY_AUTH).
registry_env="$("$registry" up --dir "$reg_dir")" || die "the test registry did not start (see above)"
eval "$registry_env"
echo "    https://$KUBEWASM_TEST_REGISTRY (CA $KUBEWASM_TEST_REGISTRY_CA)" >&2
# kubectl's discovery cache, per server address: keep it out of ~/.kube.
export KUBECACHEDIR="$work/kubectl-cache"
# The kubectl built with the control plane: always there, same version.
kubectl="$("$cluster" bin-dir)/kubectl"
k() { "$kubectl" "$@"; }

step "applying the Website CRD and sample objects in namespace demo"
k apply -f plugins/website/deploy/crd.yaml
k wait --for=condition=Established --timeout=60s crd/websites.demo.kubewasm.dev

step "installing the ClusterPlugin CRDs (deploy/crds) and the registry's pull secret in kubewasm-system"
k apply --server-side -f deploy/crds/kubewasm.dev.yaml
k wait --for=condition=Established --timeout=60s crd/clusterplugins.kubewasm.dev
# The host reads ClusterPlugins' pull secrets in its --plugin-namespace.
k create namespace kubewasm-system
k create secret generic registry-credentials -n kubewasm-system \
    --type=kubernetes.io/dockerconfigjson --from-file=.dockerconfigjson="$KUBEWASM_TEST_REGISTRY_AUTH"
k apply -f - <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: demo
  labels:
    team: platform          # label-propagator copies it onto ConfigMaps and Deployments
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  namespace: demo
data:
  color: blue
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-settings
  namespace: demo
  labels:
    kubewasm.dev/hash: "true"   # configmap-hasher stamps the content hash
data:
  app.properties: |
    color=blue
    replicas=3
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx
EOF
# The samples name namespace default; the demo keeps everything in demo.
for sample in blog untitled; do
    sed 's/^  namespace: default$/  namespace: demo/' "plugins/website/deploy/samples/$sample.yaml" | k apply -f -
done

# --- the host ---------------------------------------------------------------

step "running kubewasm with label-propagator, website and configmap-hasher from a directory, and ClusterPlugins"
plugin_dir="$work/plugins"
mkdir "$plugin_dir"
for plugin in label-propagator website configmap-hasher; do
    cp "$plugins/$plugin.wasm" "$plugin_dir/"
done
echo '{"labels": ["team"]}' >"$plugin_dir/label-propagator.settings.json"
log="$work/host.log"
launcher=()
if ((keep)); then
    # Its own session, so a Ctrl-C meant for this script leaves it running.
    launcher=(setsid)
fi
# kubewasm::controller=debug adds a line per reconcile ("reconcile done
# intents=N"); --log-format is explicit because the summary reads the text.
# The admin server (/metrics, /readyz) gets a free loopback port, named in
# the log. --plugin-resources serves ClusterPlugins beside the directory;
# their modules are pulled trusting the registry's CA, into a blob cache of
# this run.
"${launcher[@]}" "$kubewasm" run --plugins "$plugin_dir" \
    --plugin-resources --plugin-namespace kubewasm-system \
    --registry-ca "$KUBEWASM_TEST_REGISTRY_CA" --oci-cache "$work/oci" \
    --log info,kubewasm::controller=debug --log-format text \
    --admin-addr 127.0.0.1:0 --shutdown-grace-seconds 5 >"$log" 2>&1 </dev/null &
host_pid=$!
echo "    kubewasm run --plugins $plugin_dir --plugin-resources --registry-ca … (pid $host_pid, log $log)" >&2
(cd "$plugin_dir" && printf '      %s\n' *) >&2

# What the plugins must have done: description|object|jsonpath|expected
# value (a glob).
expectations=(
    "label-propagator labelled ConfigMap app-config team=platform|configmap/app-config|{.metadata.labels.team}|platform"
    "label-propagator labelled Deployment web team=platform|deployment/web|{.metadata.labels.team}|platform"
    "configmap-hasher annotated ConfigMap app-settings with its content hash|configmap/app-settings|{.metadata.annotations.kubewasm\.dev/content-hash}|sha256:?*"
    "website created ConfigMap blog with an owner reference to Website blog|configmap/blog|{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}|Website/blog"
    "website set Ready=True on Website blog|websites.demo.kubewasm.dev/blog|{.status.conditions[?(@.type==\"Ready\")].status}|True"
    "the host added website's finalizer to Website blog|websites.demo.kubewasm.dev/blog|{.metadata.finalizers}|*kubewasm.dev/website*"
    "website set Ready=False/InvalidSpec on Website untitled (blank title)|websites.demo.kubewasm.dev/untitled|{.status.conditions[?(@.type==\"Ready\")].status}/{.status.conditions[?(@.type==\"Ready\")].reason}|False/InvalidSpec"
)

# Prints each expectation not met yet, with what the cluster has instead.
unmet() {
    local e desc object path want got
    for e in "${expectations[@]}"; do
        IFS='|' read -r desc object path want <<<"$e"
        got="$(k get -n demo "$object" -o "jsonpath=$path" 2>/dev/null)" || got="(object not found)"
        # shellcheck disable=SC2053 # $want is a glob.
        [[ "$got" == $want ]] || printf '  - %s (found: %s)\n' "$desc" "${got:-nothing}"
    done
}

host_failed() {
    {
        echo "$1"
        echo "--- last 40 lines of the host's log ($log) ---"
        tail -n 40 "$log"
    } >&2
    die "$2"
}

step "waiting for the plugins to reconcile (at most $timeout s)"
started=$SECONDS
while :; do
    missing="$(unmet)"
    [[ -n "$missing" ]] || break
    kill -0 "$host_pid" 2>/dev/null ||
        host_failed "Not done:"$'\n'"$missing" "the host exited before the plugins were done"
    ((SECONDS - started < timeout)) ||
        host_failed "Not done after $timeout s:"$'\n'"$missing" "the plugins did not reconcile the demo objects in time"
    sleep 1
done
echo "    all reconciled $((SECONDS - started)) s after the host started" >&2

# --- what happened ------------------------------------------------------------

step "what the plugins did"
k get namespace demo -L team
echo
k get configmaps -n demo -o custom-columns='CONFIGMAP:.metadata.name,TEAM:.metadata.labels.team,CONTENT-HASH:.metadata.annotations.kubewasm\.dev/content-hash,OWNER:.metadata.ownerReferences[0].kind'
echo
# READY 0/1: the control plane has no nodes, so no Pod ever runs.
k get deployments -n demo -o custom-columns='DEPLOYMENT:.metadata.name,TEAM:.metadata.labels.team,PROPAGATED:.metadata.annotations.label-propagator\.kubewasm\.dev/propagated'
echo
k get websites -n demo -o custom-columns='WEBSITE:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,REASON:.status.conditions[?(@.type=="Ready")].reason,MESSAGE:.status.conditions[?(@.type=="Ready")].message'
echo
k get events -n demo --sort-by=.eventTime -o custom-columns='EVENT:.type,REASON:.reason,OBJECT:.involvedObject.kind,NAME:.involvedObject.name,FROM:.reportingComponent,MESSAGE:.message'

# --- contract 0.2: owned children and a finalizer ------------------------------

# Milliseconds since the epoch, for the two timings below (kubectl polling
# adds its own latency, tens of milliseconds).
now_ms() { date +%s%3N; }

step "owned children: deleting ConfigMap blog reconciles its Website, which recreates it"
old_uid="$(k get configmap blog -n demo -o jsonpath='{.metadata.uid}')"
k delete configmap blog -n demo --wait=false | indent
started_ms=$(now_ms)
while :; do
    uid="$(k get configmap blog -n demo -o jsonpath='{.metadata.uid}' 2>/dev/null)" || uid=""
    [[ -z "$uid" || "$uid" == "$old_uid" ]] || break
    (($(now_ms) - started_ms < timeout * 1000)) ||
        host_failed "ConfigMap blog was not recreated" "the owned-child watch did not reconcile Website blog"
    sleep 0.05
done
echo "    ConfigMap blog is back (uid $uid) $(($(now_ms) - started_ms)) ms after the delete; website subscribes only to Websites" >&2

step "finalizer: deleting Website blog waits for website's cleanup, then completes"
echo "    finalizers on Website blog: $(k get websites.demo.kubewasm.dev blog -n demo -o jsonpath='{.metadata.finalizers}')" >&2
started_ms=$(now_ms)
k delete websites.demo.kubewasm.dev blog -n demo --timeout="${timeout}s" | indent ||
    host_failed "Website blog was not deleted" "the finalizer was not removed"
echo "    Website blog is gone $(($(now_ms) - started_ms)) ms after the delete; its cleanup:" >&2
k get events -n demo --field-selector reason=Finalized \
    -o custom-columns='EVENT:.type,REASON:.reason,OBJECT:.involvedObject.kind,NAME:.involvedObject.name,MESSAGE:.message' | indent
if k get configmap blog -n demo >/dev/null 2>&1; then
    echo "    ConfigMap blog still exists (the garbage collector of a real cluster would remove it)" >&2
else
    echo "    ConfigMap blog was deleted by the finalizing reconcile" >&2
fi

# --- the in-cluster path: push, apply, swap -----------------------------------

# What ClusterPlugin probe's status says, for a failure message.
plugin_state() {
    k get clusterplugin probe -o 'jsonpath=ClusterPlugin probe: Ready={.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}, serving {.status.serving.digest}, failed: {.status.failed.message}' 2>/dev/null ||
        echo "ClusterPlugin probe: not found"
}

# Waits until `kubectl get -n demo OBJECT -o jsonpath=PATH` matches WANT (a
# glob), polling every 50 ms; sets waited_ms. DESC says what is awaited.
waited_ms=0
await() {
    local desc="$1" object="$2" path="$3" want="$4" got started_ms
    started_ms=$(now_ms)
    while :; do
        got="$(k get -n demo "$object" -o "jsonpath=$path" 2>/dev/null)" || got="(object not found)"
        # shellcheck disable=SC2053 # $want is a glob.
        [[ "$got" == $want ]] && break
        kill -0 "$host_pid" 2>/dev/null ||
            host_failed "Waiting until $desc (found: ${got:-nothing})"$'\n'"$(plugin_state)" "the host exited"
        (($(now_ms) - started_ms < timeout * 1000)) ||
            host_failed "Found: ${got:-nothing}"$'\n'"$(plugin_state)" "timed out after $timeout s waiting until $desc"
        sleep 0.05
    done
    waited_ms=$(($(now_ms) - started_ms))
}

# The ClusterPlugin for probe: module REFERENCE, settings {mark: MARK},
# confined to namespace demo, granted exactly the kinds probe declares.
cluster_plugin() {
    cat <<EOF
apiVersion: kubewasm.dev/v1alpha1
kind: ClusterPlugin
metadata:
  name: probe
spec:
  module:
    oci:
      reference: $1
      pullSecret: {name: registry-credentials}
  settings: {mark: $2}
  namespaces: [demo]
  grants:
    write: [{group: "", kind: ConfigMap}, {group: "*", kind: Gadget}]
    read: [{group: "", kind: ConfigMap}, {group: "*", kind: Gadget}]
EOF
}

cluster_plugins() { k get clusterplugins "$@" | indent; }

# Waits for an Event REASON on ClusterPlugin probe whose message contains
# TEXT, then prints the Events of that reason. Cluster-scoped objects'
# Events live in namespace default.
await_event() {
    local reason="$1" text="$2" started_ms selector="involvedObject.kind=ClusterPlugin,involvedObject.name=probe,reason=$1"
    started_ms=$(now_ms)
    until k get events -n default --field-selector "$selector" -o 'jsonpath={range .items[*]}{.message}{"\n"}{end}' |
        grep -qF -- "$text"; do
        (($(now_ms) - started_ms < timeout * 1000)) ||
            host_failed "$(plugin_state)" "timed out after $timeout s waiting for a $reason Event on ClusterPlugin probe naming $text"
        sleep 0.1
    done
    k get events -n default --field-selector "$selector" --sort-by=.eventTime \
        -o custom-columns='EVENT:.type,REASON:.reason,OBJECT:.involvedObject.kind,NAME:.involvedObject.name,MESSAGE:.message' |
        indent
}

# A ConfigMap NAME in demo with probe's label, so probe reconciles it.
probe_configmap() {
    k apply -f - <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: $1
  namespace: demo
  labels: {probe.kubewasm.dev/behave: mark}
data: {n: "1"}
EOF
}
probed() {
    k get configmaps -n demo -l probe.kubewasm.dev/behave \
        -o custom-columns='CONFIGMAP:.metadata.name,TEAM:.metadata.labels.team,MARK:.metadata.annotations.probe\.kubewasm\.dev/mark' |
        indent
}
# `kubewasm push` with the registry's credentials and CA; prints REF@DIGEST.
push() {
    "$kubewasm" push "$1" "$2" --auth "$KUBEWASM_TEST_REGISTRY_AUTH" --ca "$KUBEWASM_TEST_REGISTRY_CA"
}

repository="$KUBEWASM_TEST_REGISTRY/demo/probe"
step "in the cluster: kubewasm push probe.wasm to $repository:stable"
pushed="$(push "$plugins/probe.wasm" "$repository:stable")" || die "kubewasm push failed"
digest1="${pushed##*@}"
[[ "$digest1" == sha256:* ]] || die "kubewasm push printed no digest: $pushed"
echo "    pushed $pushed" >&2

step "kubectl apply a ClusterPlugin: probe from the registry, settings {mark: v1}, confined to demo"
cluster_plugin "$repository:stable" v1 | tee "$work/probe.clusterplugin.yaml" | indent
k apply --server-side -f "$work/probe.clusterplugin.yaml" | indent
probe_configmap probed | indent
await "probe marks ConfigMap probed v1" configmap/probed '{.metadata.annotations.probe\.kubewasm\.dev/mark}' v1
await "ClusterPlugin probe is Ready" clusterplugin/probe '{.status.conditions[?(@.type=="Ready")].status}' True
echo "    ConfigMap probed is marked v1 by the plugin the ClusterPlugin loaded; team comes from the directory's label-propagator" >&2
probed
echo >&2
cluster_plugins
echo >&2
await_event Loaded "$digest1"

step "a new build of probe under the same tag: kubewasm push, then kubectl annotate kubewasm.dev/requested-at"
# A rebuild with the same code: one extra custom section, so a new digest.
cp "$plugins/probe.wasm" "$work/probe-build2.wasm"
printf '\0\025\023kubewasm-demo-build2' >>"$work/probe-build2.wasm"
pushed="$(push "$work/probe-build2.wasm" "$repository:stable")" || die "kubewasm push of the new build failed"
digest2="${pushed##*@}"
[[ "$digest2" == sha256:* && "$digest2" != "$digest1" ]] || die "the new build did not get a new digest: $pushed"
echo "    pushed $pushed" >&2
k annotate --overwrite clusterplugin probe kubewasm.dev/requested-at="$(date +%s)" | indent
await "ClusterPlugin probe serves $digest2" clusterplugin/probe '{.status.serving.digest}' "$digest2"
swap_ms=$waited_ms
echo "    pulled and swapped in: status names the new digest $swap_ms ms after the annotation (kubectl polling included)" >&2
cluster_plugins
echo >&2
await_event Swapped "$digest2"
probe_configmap probed-after-swap | indent
await "the new build marks ConfigMap probed-after-swap v1" configmap/probed-after-swap '{.metadata.annotations.probe\.kubewasm\.dev/mark}' v1
echo "    the new build serves: ConfigMap probed-after-swap, created after the swap, is marked $waited_ms ms after its creation" >&2

step "new settings by kubectl apply: {mark: v2}; the plugin is swapped and every object reconciled again"
cluster_plugin "$repository:stable" v2 >"$work/probe.clusterplugin.yaml"
k apply --server-side -f "$work/probe.clusterplugin.yaml" | indent
await "probe marks ConfigMap probed v2" configmap/probed '{.metadata.annotations.probe\.kubewasm\.dev/mark}' v2
echo "    ConfigMap probed is marked v2 $waited_ms ms after the apply" >&2
await "probe marks ConfigMap probed-after-swap v2" configmap/probed-after-swap '{.metadata.annotations.probe\.kubewasm\.dev/mark}' v2
probed

step "a broken reference: a digest the registry does not have; the working version keeps serving"
cluster_plugin "$repository@sha256:$(printf '0%.0s' {1..64})" v2 >"$work/probe.clusterplugin.yaml"
k apply --server-side -f "$work/probe.clusterplugin.yaml" | indent
await "ClusterPlugin probe is Degraded" clusterplugin/probe '{.status.conditions[?(@.type=="Degraded")].status}' True
await "ClusterPlugin probe is Ready=False/PreviousVersionServing" clusterplugin/probe \
    '{.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}' False/PreviousVersionServing
serving="$(k get clusterplugin probe -o 'jsonpath={.status.serving.digest}')"
[[ "$serving" == "$digest2" ]] || die "ClusterPlugin probe serves $serving, not the working $digest2"
cluster_plugins -o wide
echo >&2
k get clusterplugin probe -o 'jsonpath=Degraded: {.status.conditions[?(@.type=="Degraded")].reason}: {.status.failed.message}{"\n"}' |
    indent
await_event LoadFailed "still serving"
probe_configmap probed-while-degraded | indent
await "the serving version marks ConfigMap probed-while-degraded v2" configmap/probed-while-degraded '{.metadata.annotations.probe\.kubewasm\.dev/mark}' v2
echo "    still serving $digest2: ConfigMap probed-while-degraded is marked v2 $waited_ms ms after its creation" >&2

step "the host's log: plugins loaded, reconciles that returned intents, plugin logs, warnings"
{ grep -E 'plugin installed|kubewasm running|reconcile done intents=[1-9]|kubewasm::plugin:| WARN | ERROR ' "$log" || true; } |
    sed -E \
        -e 's/^[0-9T:.-]+Z +//' \
        -e 's/^DEBUG reconcile\{plugin=([^ ]+) kind=([^ ]+) object=([^ ]+) reason=([^ }]+)[^}]*\}: kubewasm::controller(::[a-z_]+)?: reconcile done intents=([0-9]+).*$/reconciled  \1: \2 \3 (\4) -> \6 intent(s)/' \
        -e 's/^WARN reconcile\{plugin=([^ ]+) kind=([^ ]+) object=([^ ]+) reason=([^ }]+)[^}]*\}: kubewasm::controller(::[a-z_]+)?: reconcile failed error=(.*) kind="[^"]*"$/failed      \1: \2 \3 (\4): \6 (retried)/' \
        -e 's/^[A-Z]+ kubewasm::plugin: (.*) plugin="([^"]+)" fields="(.*)"$/plugin log  \2: \1 (\3)/' \
        -e 's/^INFO kubewasm::[a-z_:]+: /host        /' \
        -e 's/^WARN kubewasm::[a-z_:]+: /warning     /' \
        -e 's/^ERROR kubewasm::[a-z_:]+: /error       /' |
    indent

admin="$(sed -n 's/.*admin server listening.* addr=\([0-9.]*:[0-9]*\).*/\1/p' "$log" | head -n 1)"
if [[ -n "$admin" ]] && command -v curl >/dev/null; then
    step "the host's admin server at http://$admin: /readyz and the reconcile and intent counters"
    {
        printf '/readyz: %s\n' "$(curl -fsS --max-time 5 "http://$admin/readyz" 2>&1)"
        curl -fsS --max-time 5 "http://$admin/metrics" 2>&1 | grep -E '^kubewasm_(reconciles|intents)_total' || true
    } | indent
fi

step "done: three plugins from a directory (two Rust, one JavaScript) and one from a registry by kubectl apply reconciled live objects in a real API server"
