#!/usr/bin/env bash
# Smoke test of the test registry (registry.sh): starts one in a private
# directory, pushes a Wasm artifact (a config blob, a layer and an OCI image
# manifest) with curl through the OCI distribution API, pulls it back by tag
# and by digest, checks that TLS and basic auth are enforced, then stops the
# registry and checks that nothing is left. Prints 'N passed, N failed'.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REGISTRY_SH="${SCRIPT_DIR}/registry.sh"

DIR="$(mktemp -d "${TMPDIR:-/tmp}/kubewasm-registry-smoke.XXXXXX")"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/kubewasm-registry-smoke-work.XXXXXX")"
readonly DIR WORK
cleanup() {
  "${REGISTRY_SH}" down --dir "${DIR}" >/dev/null 2>&1 || true
  rm -rf -- "${WORK}"
}
trap cleanup EXIT

PASSED=0
FAILED=0
# check DESCRIPTION COMMAND...: run COMMAND, count and report the outcome.
check() {
  local what="$1"
  shift
  if "$@"; then
    PASSED=$((PASSED + 1))
    printf 'ok    %s\n' "${what}"
  else
    FAILED=$((FAILED + 1))
    printf 'FAIL  %s\n' "${what}"
  fi
}

# req [CURL ARGS...] METHOD PATH: one request to the registry. Sets STATUS;
# the response headers are in ${WORK}/headers, the body in ${WORK}/body.
# Credentials are sent only if the arguments include them.
req() {
  local method="${*: -2:1}" path="${*: -1}"
  STATUS="$(curl -sS --cacert "${KUBEWASM_TEST_REGISTRY_CA}" -X "${method}" \
    -D "${WORK}/headers" -o "${WORK}/body" -w '%{http_code}' \
    "${@:1:$#-2}" "https://${KUBEWASM_TEST_REGISTRY}${path}")" || STATUS="curl-failed"
}
authed=()
# header NAME: the value of response header NAME (case-insensitive).
header() {
  awk -v name="$(tr '[:upper:]' '[:lower:]' <<<"$1")" '
    { line = $0; sub(/\r$/, "", line); split(line, kv, ": ") }
    tolower(kv[1]) == name { print substr(line, length(kv[1]) + 3) }' "${WORK}/headers" | tail -n1
}
is() { [[ "$1" == "$2" ]] || { printf '      got %q, want %q\n' "$1" "$2"; return 1; }; }
has() { [[ "$1" == *"$2"* ]] || { printf '      %q does not contain %q\n' "$1" "$2"; return 1; }; }
digest_of() { printf 'sha256:%s' "$(sha256sum "$1" | cut -d' ' -f1)"; }
same_file() { cmp -s "$1" "$2" || { printf '      %s differs from %s\n' "$1" "$2"; return 1; }; }

# ---------------------------------------------------------------------------
# Start
# ---------------------------------------------------------------------------

start_us="${EPOCHREALTIME/[.,]/}"
eval "$("${REGISTRY_SH}" up --dir "${DIR}")"
up_ms=$(((${EPOCHREALTIME/[.,]/} - start_us) / 1000))
printf 'registry %s up at %s in %d ms\n' "${KUBEWASM_TEST_REGISTRY_VERSION}" "${KUBEWASM_TEST_REGISTRY}" "${up_ms}"
authed=(--user "${KUBEWASM_TEST_REGISTRY_USER}:${KUBEWASM_TEST_REGISTRY_PASSWORD}")
PID="$(cut -d' ' -f1 "${DIR}/pid")"
readonly PID

check "the registry listens on 127.0.0.1 only" \
  has "$(grep -m1 'listening on' "${DIR}/logs/registry.log")" "listening on 127.0.0.1:${KUBEWASM_TEST_REGISTRY##*:}, tls"
check "the exports name the files up wrote" \
  test -f "${KUBEWASM_TEST_REGISTRY_CA}" -a -f "${KUBEWASM_TEST_REGISTRY_AUTH}"
status_ready() { "${REGISTRY_SH}" status --dir "${DIR}" >/dev/null; }
check "'status' reports it ready" status_ready

# ---------------------------------------------------------------------------
# TLS and authentication
# ---------------------------------------------------------------------------

anon_v2() { curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$@" 2>/dev/null || true; }
check "TLS: the server certificate is not trusted without the run's CA" \
  is "$(anon_v2 "https://${KUBEWASM_TEST_REGISTRY}/v2/")" 000
check "TLS: the certificate is valid for localhost too" \
  is "$(anon_v2 --cacert "${KUBEWASM_TEST_REGISTRY_CA}" "https://localhost:${KUBEWASM_TEST_REGISTRY##*:}/v2/")" 401
check "TLS: plain HTTP is refused" \
  is "$(anon_v2 "http://${KUBEWASM_TEST_REGISTRY}/v2/")" 400

req GET /v2/
check "GET /v2/ without credentials: 401" is "${STATUS}" 401
check "  with a Basic challenge for the registry's realm" \
  is "$(header WWW-Authenticate)" 'Basic realm="kubewasm-test-registry"'
req --user "${KUBEWASM_TEST_REGISTRY_USER}:wrong-password" GET /v2/
check "GET /v2/ with a wrong password: 401" is "${STATUS}" 401
req --user "someone-else:${KUBEWASM_TEST_REGISTRY_PASSWORD}" GET /v2/
check "GET /v2/ with an unknown user: 401" is "${STATUS}" 401
req "${authed[@]}" GET /v2/
check "GET /v2/ with credentials: 200" is "${STATUS}" 200
check "  announcing the distribution API version" \
  is "$(header Docker-Distribution-API-Version)" registry/2.0

# The dockerconfigjson's credential is the one the registry accepts.
auth="$(sed -n 's/.*"127\.0\.0\.1:[0-9]*":{"auth":"\([^"]*\)".*/\1/p' "${KUBEWASM_TEST_REGISTRY_AUTH}")"
req -H "Authorization: Basic ${auth}" GET /v2/
check "the dockerconfigjson's auth for ${KUBEWASM_TEST_REGISTRY} is accepted: 200" is "${STATUS}" 200

# ---------------------------------------------------------------------------
# Push: blobs, then a manifest (the Wasm OCI artifact layout)
# ---------------------------------------------------------------------------

readonly REPO=kubewasm/smoke TAG=v1
# The smallest valid WebAssembly module: magic and version.
printf '\0asm\1\0\0\0' >"${WORK}/layer.wasm"
LAYER_DIGEST="$(digest_of "${WORK}/layer.wasm")"
printf '{"architecture":"wasm","os":"wasip2","layerDigests":["%s"]}' "${LAYER_DIGEST}" >"${WORK}/config.json"
CONFIG_DIGEST="$(digest_of "${WORK}/config.json")"

req POST "/v2/${REPO}/blobs/uploads/"
check "POST blobs/uploads/ without credentials: 401" is "${STATUS}" 401

# upload_location: start an upload session; prints its Location.
upload_location() {
  req "${authed[@]}" POST "/v2/${REPO}/blobs/uploads/"
  is "${STATUS}" 202 || return 1
  local location
  location="$(header Location)"
  printf '%s' "${location#https://"${KUBEWASM_TEST_REGISTRY}"}"
}
# with_digest LOCATION DIGEST: the upload URL with ?digest= (or &digest=).
with_digest() {
  local sep='?'
  [[ "$1" != *'?'* ]] || sep='&'
  printf '%s%sdigest=%s' "$1" "${sep}" "$2"
}

# Config: monolithic, the body in the closing PUT.
location="$(upload_location)"
check "POST blobs/uploads/: 202 with a Location" test -n "${location}"
req "${authed[@]}" -H 'Content-Type: application/octet-stream' --data-binary "@${WORK}/config.json" \
  PUT "$(with_digest "${location}" "${CONFIG_DIGEST}")"
check "PUT ?digest= (config blob, monolithic): 201" is "${STATUS}" 201
check "  Docker-Content-Digest is the config's digest" is "$(header Docker-Content-Digest)" "${CONFIG_DIGEST}"

# A wrong digest is refused.
location="$(upload_location)"
req "${authed[@]}" -H 'Content-Type: application/octet-stream' --data-binary "@${WORK}/layer.wasm" \
  PUT "$(with_digest "${location}" "sha256:$(printf '0%.0s' {1..64})")"
check "PUT ?digest= with a digest that does not match the content: 400" is "${STATUS}" 400
check "  DIGEST_INVALID" has "$(cat "${WORK}/body")" DIGEST_INVALID

# Layer: chunked, PATCH then an empty closing PUT.
location="$(upload_location)"
req "${authed[@]}" -H 'Content-Type: application/octet-stream' \
  -H "Content-Range: 0-$(($(stat -c %s "${WORK}/layer.wasm") - 1))" --data-binary "@${WORK}/layer.wasm" \
  PATCH "${location}"
check "PATCH the layer chunk: 202" is "${STATUS}" 202
location="$(header Location)"
location="${location#https://"${KUBEWASM_TEST_REGISTRY}"}"
req "${authed[@]}" -H 'Content-Length: 0' PUT "$(with_digest "${location}" "${LAYER_DIGEST}")"
check "PUT ?digest= (layer blob, chunked): 201" is "${STATUS}" 201
check "  Docker-Content-Digest is the layer's digest" is "$(header Docker-Content-Digest)" "${LAYER_DIGEST}"

req "${authed[@]}" --head HEAD "/v2/${REPO}/blobs/${LAYER_DIGEST}"
check "HEAD the layer blob: 200" is "${STATUS}" 200
check "  Content-Length is the layer's size" is "$(header Content-Length)" 8

readonly MANIFEST_TYPE=application/vnd.oci.image.manifest.v1+json
manifest() { # manifest LAYER_DIGEST LAYER_SIZE
  printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.wasm.config.v0+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/wasm","digest":"%s","size":%d}]}' \
    "${MANIFEST_TYPE}" "${CONFIG_DIGEST}" "$(stat -c %s "${WORK}/config.json")" "$1" "$2"
}
manifest "${LAYER_DIGEST}" 8 >"${WORK}/manifest.json"
MANIFEST_DIGEST="$(digest_of "${WORK}/manifest.json")"

req -H "Content-Type: ${MANIFEST_TYPE}" --data-binary "@${WORK}/manifest.json" PUT "/v2/${REPO}/manifests/${TAG}"
check "PUT manifests/${TAG} without credentials: 401" is "${STATUS}" 401
manifest "sha256:$(printf 'a%.0s' {1..64})" 8 >"${WORK}/dangling.json"
req "${authed[@]}" -H "Content-Type: ${MANIFEST_TYPE}" --data-binary "@${WORK}/dangling.json" \
  PUT "/v2/${REPO}/manifests/dangling"
check "PUT a manifest whose layer was never pushed: 400" is "${STATUS}" 400
check "  MANIFEST_BLOB_UNKNOWN" has "$(cat "${WORK}/body")" MANIFEST_BLOB_UNKNOWN
req "${authed[@]}" -H "Content-Type: ${MANIFEST_TYPE}" --data-binary "@${WORK}/manifest.json" \
  PUT "/v2/${REPO}/manifests/${TAG}"
check "PUT manifests/${TAG}: 201" is "${STATUS}" 201
check "  Docker-Content-Digest is the manifest's digest" is "$(header Docker-Content-Digest)" "${MANIFEST_DIGEST}"

# ---------------------------------------------------------------------------
# Pull: by tag and by digest
# ---------------------------------------------------------------------------

req -H "Accept: ${MANIFEST_TYPE}" GET "/v2/${REPO}/manifests/${TAG}"
check "GET manifests/${TAG} without credentials: 401" is "${STATUS}" 401
req "${authed[@]}" -H "Accept: ${MANIFEST_TYPE}" GET "/v2/${REPO}/manifests/${TAG}"
check "GET manifests/${TAG}: 200" is "${STATUS}" 200
check "  the same bytes as pushed" same_file "${WORK}/body" "${WORK}/manifest.json"
check "  Content-Type ${MANIFEST_TYPE}" is "$(header Content-Type)" "${MANIFEST_TYPE}"
check "  Docker-Content-Digest resolves the tag" is "$(header Docker-Content-Digest)" "${MANIFEST_DIGEST}"
req "${authed[@]}" -H "Accept: ${MANIFEST_TYPE}" GET "/v2/${REPO}/manifests/${MANIFEST_DIGEST}"
check "GET manifests/<digest>: 200" is "${STATUS}" 200
check "  the same bytes as pushed" same_file "${WORK}/body" "${WORK}/manifest.json"
req "${authed[@]}" GET "/v2/${REPO}/blobs/${LAYER_DIGEST}"
check "GET the layer blob: 200, the same bytes as pushed" same_file "${WORK}/body" "${WORK}/layer.wasm"
req "${authed[@]}" GET "/v2/${REPO}/blobs/${CONFIG_DIGEST}"
check "GET the config blob: 200, the same bytes as pushed" same_file "${WORK}/body" "${WORK}/config.json"
req "${authed[@]}" GET "/v2/${REPO}/tags/list"
check "GET tags/list lists ${TAG} only" is "$(tr -d ' \n' <"${WORK}/body")" "{\"name\":\"${REPO}\",\"tags\":[\"${TAG}\"]}"
req "${authed[@]}" -H "Accept: ${MANIFEST_TYPE}" GET "/v2/${REPO}/manifests/v2"
check "GET manifests/<unknown tag>: 404" is "${STATUS}" 404
check "  MANIFEST_UNKNOWN" has "$(cat "${WORK}/body")" MANIFEST_UNKNOWN

# ---------------------------------------------------------------------------
# Stop
# ---------------------------------------------------------------------------

start_us="${EPOCHREALTIME/[.,]/}"
"${REGISTRY_SH}" down --dir "${DIR}" 2>/dev/null
down_ms=$(((${EPOCHREALTIME/[.,]/} - start_us) / 1000))
printf 'registry stopped in %d ms\n' "${down_ms}"
# Gone, or a zombie its new parent (init or a subreaper) has not reaped yet.
registry_gone() { ! readlink "/proc/${PID}/exe" >/dev/null 2>&1; }
check "'down' stopped the registry process" registry_gone
check "'down' removed the data directory" test ! -e "${DIR}"
port_closed() { ! (exec 3<>"/dev/tcp/127.0.0.1/${KUBEWASM_TEST_REGISTRY##*:}") 2>/dev/null; }
check "nothing listens on ${KUBEWASM_TEST_REGISTRY} any more" port_closed

printf '%d passed, %d failed\n' "${PASSED}" "${FAILED}"
((FAILED == 0))
