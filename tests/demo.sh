#!/usr/bin/env bash
# The README's main job: builds the kubewasm host and the example plugins
# (Rust and JavaScript) and checks each component; starts a private Kubernetes
# control plane on loopback (tests/control-plane/cluster.sh); creates sample
# objects; runs `kubewasm run` with the three example plugins against it;
# waits until they have reconciled the objects; and prints what they did.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: tests/demo.sh [--keep]

Builds the host and the example plugins, starts a private control plane,
runs the host with label-propagator, website and configmap-hasher against
sample objects, and prints what the plugins did. Everything it started is
stopped on exit, Ctrl-C included.

  --keep   Leave the control plane and the host running, and print how to
           use and stop them.

Environment:
  CARGO_TARGET_DIR        host build (default ~/.cache/kubewasm/target)
  KUBEWASM_PLUGIN_DIR     plugin build output (default plugins/dist)
  KUBEWASM_DEMO_TIMEOUT   seconds to wait for the reconciles (default 120)
EOF
}

keep=0
for arg in "$@"; do
    case "$arg" in
        --keep) keep=1 ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'demo: unknown argument %s (see --help)\n' "$arg" >&2; exit 2 ;;
    esac
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kubewasm"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
plugins="${KUBEWASM_PLUGIN_DIR:-$repo/plugins/dist}"
cluster="$repo/tests/control-plane/cluster.sh"
timeout="${KUBEWASM_DEMO_TIMEOUT:-120}"
cd "$repo"

if [[ -t 2 ]]; then bold=$'\033[1m' red=$'\033[1;31m' plain=$'\033[0m'; else bold="" red="" plain=""; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain" >&2; }
die() { printf '\n%sdemo: error:%s %s\n' "$red" "$plain" "$*" >&2; exit 1; }
indent() { sed 's/^/    /'; }

[[ "$timeout" =~ ^[1-9][0-9]*$ ]] ||
    die "KUBEWASM_DEMO_TIMEOUT must be a positive number of seconds, not '$timeout'"

# --- cleanup ---------------------------------------------------------------

work=""      # temporary directory: control plane data, plugin directory, host log
cp_dir=""    # the control plane's data directory, once `up` was called
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
    local q_cluster q_dir
    if [[ -n "$host_pid" ]] && ! kill -0 "$host_pid" 2>/dev/null; then
        host_pid="" # it exited: nothing to stop
    fi
    q_cluster="$(printf '%q' "$cluster")"
    q_dir="$(printf '%q' "$cp_dir")"
    step "kept running (--keep)"
    {
        echo "The control plane${host_pid:+ and the host (pid $host_pid)} are still running. Use them with:"
        echo "  eval \"\$($q_cluster env --dir $q_dir)\"   # KUBECONFIG, and kubectl on PATH"
        echo "  kubectl get configmaps,deployments,websites -n demo --show-labels"
        echo "  kubectl label namespace demo team=payments --overwrite   # label-propagator follows"
        if [[ -n "$host_pid" ]]; then
            echo "  tail -f $(printf '%q' "$work/host.log")"
            echo "  # the host watches $(printf '%q' "$work/plugins"): a changed .wasm or settings file is reloaded"
        fi
        echo "Stop them with:"
        echo "  ${host_pid:+kill $host_pid; }$q_cluster down --dir $q_dir; rm -rf $(printf '%q' "$work")"
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

step "building the host"
cargo build --release --locked -p kubewasm
kubewasm="$CARGO_TARGET_DIR/release/kubewasm"

step "building the example plugins"
plugins/build.sh "$plugins"

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
for plugin in label-propagator website configmap-hasher; do
    [[ -f "$plugins/$plugin.wasm" ]] || die "$plugins/$plugin.wasm is missing: plugins/build.sh did not build it"
    "$kubewasm" check "$plugins/$plugin.wasm" | summarize_check
done

# --- a private control plane ------------------------------------------------

step "starting a private control plane (kube-apiserver + etcd on 127.0.0.1)"
"$cluster" build
work="$(mktemp -d "${TMPDIR:-/tmp}/kubewasm-demo.XXXXXX")"
cp_dir="$work/cluster"
KUBECONFIG="$("$cluster" up --dir "$cp_dir")"
export KUBECONFIG
# kubectl's discovery cache, per server address: keep it out of ~/.kube.
export KUBECACHEDIR="$work/kubectl-cache"
# The kubectl built with the control plane: always there, same version.
kubectl="$("$cluster" bin-dir)/kubectl"
k() { "$kubectl" "$@"; }

step "applying the Website CRD and sample objects in namespace demo"
k apply -f plugins/website/deploy/crd.yaml
k wait --for=condition=Established --timeout=60s crd/websites.demo.kubewasm.dev
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

step "running kubewasm with label-propagator, website and configmap-hasher"
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
# the log.
"${launcher[@]}" "$kubewasm" run --plugins "$plugin_dir" \
    --log info,kubewasm::controller=debug --log-format text \
    --admin-addr 127.0.0.1:0 --shutdown-grace-seconds 5 >"$log" 2>&1 </dev/null &
host_pid=$!
echo "    kubewasm run --plugins $plugin_dir (pid $host_pid, log $log)" >&2
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

step "the host's log: plugins loaded, reconciles that returned intents, plugin logs, warnings"
{ grep -E 'plugin installed|kubewasm running|reconcile done intents=[1-9]|kubewasm::plugin:| WARN | ERROR ' "$log" || true; } |
    sed -E \
        -e 's/^[0-9T:.-]+Z +//' \
        -e 's/^DEBUG reconcile\{plugin=([^ ]+) kind=([^ ]+) object=([^ ]+) reason=([^ }]+)[^}]*\}: kubewasm::controller(::[a-z_]+)?: reconcile done intents=([0-9]+).*$/reconciled  \1: \2 \3 (\4) -> \6 intent(s)/' \
        -e 's/^WARN reconcile\{plugin=([^ ]+) kind=([^ ]+) object=([^ ]+) reason=([^ }]+)[^}]*\}: kubewasm::controller(::[a-z_]+)?: reconcile failed error=(.*) kind="[^"]*"$/failed      \1: \2 \3 (\4): \6 (retried)/' \
        -e 's/^[A-Z]+ kubewasm::plugin: (.*) plugin="([^"]+)" fields="(.*)"$/plugin log  \2: \1 (\3)/' \
        -e 's/^INFO kubewasm::[a-z_:]+: /host        /' |
    indent

admin="$(sed -n 's/.*admin server listening.* addr=\([0-9.]*:[0-9]*\).*/\1/p' "$log" | head -n 1)"
if [[ -n "$admin" ]] && command -v curl >/dev/null; then
    step "the host's admin server at http://$admin: /readyz and the reconcile and intent counters"
    {
        printf '/readyz: %s\n' "$(curl -fsS --max-time 5 "http://$admin/readyz" 2>&1)"
        curl -fsS --max-time 5 "http://$admin/metrics" 2>&1 | grep -E '^kubewasm_(reconciles|intents)_total' || true
    } | indent
fi

step "done: three plugins (two Rust, one JavaScript) reconciled live objects in a real API server"
