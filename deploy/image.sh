#!/usr/bin/env bash
# Builds the kubewasm container image without a Docker engine, with buildah
# (Debian 12's package, 1.28), checks that the binary inside runs, and
# optionally pushes the image. What deploy/Dockerfile describes, assembled
# from this machine instead of from pulled base images:
#
#   /kubewasm                          the host binary (the entrypoint)
#   the libraries `ldd` lists          glibc, libgcc_s, ... from this machine
#   the dynamic loader                 e.g. /lib64/ld-linux-x86-64.so.2
#   /etc/ssl/certs/ca-certificates.crt this machine's CA bundle
#   /etc/passwd, /etc/group            root and nonroot (65532)
#   /etc/nsswitch.conf                 files before DNS for hosts
#   /home/nonroot, /tmp                the user's home (0700) and a sticky /tmp
#
# one layer FROM scratch, user 65532:65532, entrypoint ["/kubewasm"], OCI
# labels (title, version, revision, source, licenses), committed in the OCI
# format. The binary is the one given with --binary, or a release build made
# here (`cargo build --release --locked -p kubewasm`). The tests
# (tests/tests/deploy_image.rs) pass the debug binary they have already
# built, which saves a second build of the host in CI; a debug image is
# several times larger, so ship a release build.
#
# Needs root (uid 0): `buildah mount` of vfs storage and `chroot` into the
# image for the check. CI and the project's machines run as root; as another
# user, try `buildah unshare deploy/image.sh ...` (not tested here). No OCI
# runtime (crun, runc) is needed: nothing is run with `buildah run`.
#
# Storage: buildah uses the vfs driver (works inside containers, no fuse or
# overlay mounts) with its storage, run and temporary directories under
# ${XDG_CACHE_HOME:-~/.cache}/kubewasm/containers, not /var/lib/containers.
# One exception: buildah 1.28 running as root keeps its blob-info cache (a
# 64 KiB boltdb of which compressed blob matches which layer) in
# /var/lib/containers/cache and has no flag to move it (newer buildah puts
# it under --root).
#
# Stdout: the image reference, `localhost/kubewasm:TAG`, or with --push the
# pushed reference pinned by digest, `REPOSITORY:TAG@sha256:...`. Progress,
# sizes and timings go to stderr.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
REPO="$(cd "${SCRIPT_DIR}/.." && pwd)"
readonly REPO
readonly CACHE_ROOT="${KUBEWASM_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/kubewasm}"
readonly NONROOT=65532

usage() {
  cat <<EOF
Usage: $(basename "$0") [OPTIONS]

Builds the kubewasm image (localhost/kubewasm:TAG) with buildah, checks that
/kubewasm --version runs inside it as user ${NONROOT}, and with --push pushes it.

Options:
  --binary FILE      The kubewasm binary to package. Default: a release build
                     (cargo build --release --locked -p kubewasm).
  --tag TAG          The image tag. Default: the workspace version.
  --push REPOSITORY  Push to REPOSITORY:TAG, e.g. registry.example.com/kubewasm.
  --auth FILE        Registry credentials for --push: a dockerconfigjson file
                     (what 'kubewasm push --auth' reads). Default: buildah's
                     (REGISTRY_AUTH_FILE, then its usual auth.json files).
  --ca FILE          A PEM CA certificate to trust for --push, besides the
                     system's.
  -h, --help         This text.

Needs root, buildah, ldd and chroot. Storage under ${CACHE_ROOT}/containers
(KUBEWASM_CACHE_DIR moves ${CACHE_ROOT}).
EOF
}

log() { printf 'image.sh: %s\n' "$*" >&2; }
die() {
  printf 'image.sh: error: %s\n' "$*" >&2
  exit 1
}

now() { printf '%s' "${EPOCHREALTIME/[.,]/}"; } # microseconds
elapsed() { # elapsed START_US -> seconds with two decimals
  local us=$(($(now) - $1))
  printf '%d.%02d' $((us / 1000000)) $((us / 10000 % 100))
}

binary="" tag="" push="" auth="" ca=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) binary="${2:?--binary needs a file}"; shift 2 ;;
    --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
    --push) push="${2:?--push needs a repository}"; shift 2 ;;
    --auth) auth="${2:?--auth needs a file}"; shift 2 ;;
    --ca) ca="${2:?--ca needs a file}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[[ "$(id -u)" -eq 0 ]] \
  || die "needs root (buildah mount of vfs storage and chroot into the image); run it with sudo, or try 'buildah unshare $0 ...'"
for tool in buildah ldd chroot; do
  command -v "${tool}" >/dev/null \
    || die "${tool} not found (Debian: apt-get install --no-install-recommends buildah; ldd and chroot come with libc-bin and coreutils)"
done
[[ -z "${auth}" || -r "${auth}" ]] || die "--auth ${auth}: no such file"
[[ -z "${ca}" || -r "${ca}" ]] || die "--ca ${ca}: no such file"
[[ -n "${push}" || (-z "${auth}" && -z "${ca}") ]] || die "--auth and --ca only go with --push"
readonly certs=/etc/ssl/certs/ca-certificates.crt
[[ -r "${certs}" ]] || die "${certs} not found (Debian: apt-get install ca-certificates)"

# A value of `[workspace.package]` in the workspace's Cargo.toml.
workspace_field() {
  awk -v key="$1" '
    /^\[/ { section = $0 }
    section == "[workspace.package]" && $1 == key && $2 == "=" {
      gsub(/"/, "", $3); print $3; exit
    }' "${REPO}/Cargo.toml"
}
version="$(workspace_field version)"
[[ -n "${version}" ]] || die "no version in [workspace.package] of ${REPO}/Cargo.toml"
tag="${tag:-${version}}"
image="localhost/kubewasm:${tag}"

if [[ -z "${binary}" ]]; then
  log "building the host: cargo build --release --locked -p kubewasm"
  start="$(now)"
  binary="$(cd "${REPO}" && cargo build --release --locked -p kubewasm --bin kubewasm \
    --message-format=json-render-diagnostics \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)"
  [[ -n "${binary}" ]] || die "cargo build printed no executable"
  log "built ${binary} in $(elapsed "${start}") s"
fi
[[ -x "${binary}" ]] || die "--binary ${binary}: not an executable file"

mkdir -p "${CACHE_ROOT}/containers/tmp"
# buildah writes layer tarballs to TMPDIR (default /var/tmp) while committing.
export TMPDIR="${CACHE_ROOT}/containers/tmp"
bah() {
  buildah --storage-driver vfs \
    --root "${CACHE_ROOT}/containers/storage" \
    --runroot "${CACHE_ROOT}/containers/run" "$@"
}

work="$(mktemp -d "${TMPDIR}/image.XXXXXX")"
containers=()
cleanup() {
  local c
  for c in "${containers[@]}"; do
    bah umount "${c}" >/dev/null 2>&1 || true
    bah rm "${c}" >/dev/null 2>&1 || true
  done
  rm -rf "${work}"
}
trap cleanup EXIT

start="$(now)"
# The root filesystem: the binary, what the dynamic loader needs to start it,
# and the few files a program expects in /etc.
root="${work}/root"
mkdir -p "${root}/etc/ssl/certs" "${root}/home" "${root}/tmp"
chmod 0755 "${root}"
chmod 1777 "${root}/tmp"
install -m 0755 "${binary}" "${root}/kubewasm"
# `ldd` lines: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" for a
# library, "/lib64/ld-linux-x86-64.so.2 (0x...)" for the loader, no path for
# the vDSO; "not a dynamic executable" (exit 1) for a static binary.
libs=()
if ldd_out="$(ldd "${binary}" 2>&1)"; then
  if grep -q 'not found' <<<"${ldd_out}"; then
    die "libraries of ${binary} are missing on this machine:"$'\n'"${ldd_out}"
  fi
  mapfile -t libs < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"${ldd_out}")
  for lib in "${libs[@]}"; do
    mkdir -p "${root}$(dirname "${lib}")"
    cp -L "${lib}" "${root}${lib}"
  done
elif ! grep -q 'not a dynamic executable' <<<"${ldd_out}"; then
  die "ldd ${binary} failed: ${ldd_out}"
fi
cp -L "${certs}" "${root}${certs}"
cat >"${root}/etc/passwd" <<EOF
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:${NONROOT}:${NONROOT}:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"${root}/etc/group" <<EOF
root:x:0:
nonroot:x:${NONROOT}:
EOF
# glibc's default without this file asks DNS before /etc/hosts.
cat >"${root}/etc/nsswitch.conf" <<EOF
passwd: files
group: files
hosts: files dns
EOF
# The home directory, copied on its own to be owned by nonroot (0700).
home="${work}/home"
mkdir -p "${home}/nonroot"
chmod 0700 "${home}/nonroot"
log "staged $(du -sh "${root}" | cut -f1): /kubewasm, ${#libs[@]} shared objects with the loader (${libs[*]}), /etc"

revision="$(git -C "${REPO}" rev-parse HEAD 2>/dev/null || echo unknown)"
ctr="$(bah from --name "kubewasm-image-$$" scratch)"
containers+=("${ctr}")
bah copy --quiet "${ctr}" "${root}" / >/dev/null
bah copy --quiet --chown "${NONROOT}:${NONROOT}" "${ctr}" "${home}" /home >/dev/null
bah config \
  --user "${NONROOT}:${NONROOT}" \
  --entrypoint '["/kubewasm"]' \
  --cmd '["--help"]' \
  --workingdir / \
  --created-by "deploy/image.sh (buildah copy of a staged root)" \
  --label org.opencontainers.image.title=kubewasm \
  --label "org.opencontainers.image.description=Kubernetes reconcile logic as Wasm components" \
  --label "org.opencontainers.image.version=${version}" \
  --label "org.opencontainers.image.revision=${revision}" \
  --label "org.opencontainers.image.source=$(workspace_field repository)" \
  --label "org.opencontainers.image.licenses=$(workspace_field license)" \
  "${ctr}"
id="$(bah commit --quiet --format oci --rm "${ctr}" "${image}")"
containers=()
# Images the tag moved away from: the storage is this script's alone.
bah rmi --prune >/dev/null 2>&1 || true
size="$(bah images --format '{{.Size}}' "${id}" | head -n 1)"
log "built ${image} (${id:0:12}, ${size}) in $(elapsed "${start}") s"

# The check: the image's own files, not the staged ones, start the binary as
# the image's user. chroot needs no OCI runtime and no namespaces.
start="$(now)"
check="$(bah from --name "kubewasm-image-check-$$" "${id}")"
containers+=("${check}")
mnt="$(bah mount "${check}")"
want="kubewasm ${version}"
got="$(chroot --userspec="${NONROOT}:${NONROOT}" "${mnt}" /kubewasm --version 2>&1)" \
  || die "/kubewasm --version failed inside the image: ${got}"
[[ "${got}" == "${want}" ]] || die "/kubewasm --version inside the image printed '${got}', not '${want}'"
bah umount "${check}" >/dev/null
bah rm "${check}" >/dev/null
containers=()
log "inside the image, as ${NONROOT}:${NONROOT}: /kubewasm --version prints '${got}' (checked in $(elapsed "${start}") s)"

if [[ -z "${push}" ]]; then
  printf '%s\n' "${image}"
  exit 0
fi
push_args=(--format oci --digestfile "${work}/digest")
if [[ -n "${ca}" ]]; then
  # buildah trusts the *.crt files of a directory.
  mkdir "${work}/certs"
  cp "${ca}" "${work}/certs/ca.crt"
  push_args+=(--cert-dir "${work}/certs")
fi
[[ -z "${auth}" ]] || push_args+=(--authfile "${auth}")
start="$(now)"
bah push --quiet "${push_args[@]}" "${id}" "docker://${push}:${tag}" >&2 \
  || die "buildah push to ${push}:${tag} failed (see above)"
digest="$(cat "${work}/digest")"
log "pushed ${push}:${tag} (${digest}) in $(elapsed "${start}") s"
printf '%s:%s@%s\n' "${push}" "${tag}" "${digest}"
