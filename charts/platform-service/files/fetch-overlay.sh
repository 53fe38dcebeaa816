#!/bin/sh
# Init container of overlay mode: pulls the overlay artifact of a build from an OCI
# registry by digest and unzips it into $OVERLAY_DEST (the /project emptyDir).
#
# Needs: sh, curl, unzip, sha256sum, sed, tr (curl plus busybox is enough).
# Environment (set by the chart):
#   OVERLAY_REGISTRY    registry host[:port]
#   OVERLAY_REPOSITORY  repository path in that registry
#   OVERLAY_DIGEST      sha256:... of the artifact manifest
#   OVERLAY_PLAIN_HTTP  "true" for http://
#   OVERLAY_DEST        where to unzip (default /project)
#   DOCKER_CONFIG       optional directory holding a docker config.json with the
#                       registry's credentials ("auths": {"<host>": {"auth": "<base64>"}})
# Both the manifest and the zip are verified against their digests before anything is
# unpacked: what runs is exactly what was scanned.
set -eu

: "${OVERLAY_REGISTRY:?OVERLAY_REGISTRY is not set}"
: "${OVERLAY_REPOSITORY:?OVERLAY_REPOSITORY is not set}"
: "${OVERLAY_DIGEST:?OVERLAY_DIGEST is not set}"
DEST="${OVERLAY_DEST:-/project}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

log() { echo "fetch-overlay: $*" >&2; }
die() { log "error: $*"; exit 1; }

case "$OVERLAY_DIGEST" in
  sha256:*) ;;
  *) die "OVERLAY_DIGEST must be sha256:<hex>, not $OVERLAY_DIGEST" ;;
esac

scheme=https
[ "${OVERLAY_PLAIN_HTTP:-false}" = true ] && scheme=http
base="$scheme://$OVERLAY_REGISTRY/v2/$OVERLAY_REPOSITORY"

# Basic credentials for the registry from a docker config.json, if one is mounted.
basic=""
if [ -n "${DOCKER_CONFIG:-}" ] && [ -f "$DOCKER_CONFIG/config.json" ]; then
  flat="$(tr -d ' \n\r\t' <"$DOCKER_CONFIG/config.json")"
  basic="$(printf '%s' "$flat" | sed -n "s|.*\"\(https\{0,1\}://\)\{0,1\}$OVERLAY_REGISTRY/\{0,1\}\":{[^}]*\"auth\":\"\([^\"]*\)\".*|\2|p")"
  [ -n "$basic" ] || log "no credentials for $OVERLAY_REGISTRY in $DOCKER_CONFIG/config.json; trying anonymously"
fi

authz=""
if [ -n "$basic" ]; then authz="Basic $basic"; fi

# header_value NAME FILE: the value of an HTTP response header (case-insensitive).
header_value() {
  tr -d '\r' <"$2" | sed -n "s/^$1:[[:space:]]*//Ip" | tail -n 1
}

# challenge_param NAME: one parameter of the Bearer challenge in $challenge.
challenge_param() {
  printf '%s' "$challenge" | sed -n "s/.*$1=\"\([^\"]*\)\".*/\1/p"
}

# get URL OUT ACCEPT: GET with the current credentials; answers with the HTTP status.
get() {
  if [ -n "$authz" ]; then
    curl -sSL -o "$2" -D "$WORK/headers" -w '%{http_code}' -H "Accept: $3" -H "Authorization: $authz" "$1"
  else
    curl -sSL -o "$2" -D "$WORK/headers" -w '%{http_code}' -H "Accept: $3" "$1"
  fi
}

# On 401, follow the registry's challenge (Basic, or a Bearer token service) once.
authenticate() {
  challenge="$(header_value www-authenticate "$WORK/headers")"
  case "$challenge" in
    [Bb]earer*)
      realm="$(challenge_param realm)"
      service="$(challenge_param service)"
      scope="$(challenge_param scope)"
      [ -n "$scope" ] || scope="repository:$OVERLAY_REPOSITORY:pull"
      [ -n "$realm" ] || die "the registry's Bearer challenge names no realm: $challenge"
      set -- -sS -G "$realm" --data-urlencode "service=$service" --data-urlencode "scope=$scope"
      if [ -n "$basic" ]; then set -- "$@" -H "Authorization: Basic $basic"; fi
      token_json="$(curl "$@")" || die "the token service $realm refused"
      token="$(printf '%s' "$token_json" | tr -d ' \n\r\t' | sed -n 's/.*"\(access_\)\{0,1\}token":"\([^"]*\)".*/\2/p' | head -n 1)"
      [ -n "$token" ] || die "the token service $realm returned no token"
      authz="Bearer $token"
      ;;
    [Bb]asic*)
      [ -n "$basic" ] || die "$OVERLAY_REGISTRY needs credentials: set overlay.pullSecret"
      authz="Basic $basic"
      ;;
    *) die "$OVERLAY_REGISTRY answered 401 with no usable challenge" ;;
  esac
}

# fetch URL OUT ACCEPT WHAT
fetch() {
  status="$(get "$1" "$2" "$3")"
  if [ "$status" = 401 ]; then
    authenticate
    status="$(get "$1" "$2" "$3")"
  fi
  [ "$status" = 200 ] || die "GET $4 $1 answered HTTP $status"
}

verify() {
  actual="sha256:$(sha256sum "$1" | cut -d ' ' -f 1)"
  [ "$actual" = "$2" ] || die "$3 digest mismatch: expected $2, got $actual"
}

log "fetching $OVERLAY_REGISTRY/$OVERLAY_REPOSITORY@$OVERLAY_DIGEST"
fetch "$base/manifests/$OVERLAY_DIGEST" "$WORK/manifest.json" \
  'application/vnd.oci.image.manifest.v1+json' manifest
verify "$WORK/manifest.json" "$OVERLAY_DIGEST" manifest

# The artifact has one layer: {"mediaType":"application/zip","digest":"sha256:..."}.
flat="$(tr -d ' \n\r\t' <"$WORK/manifest.json")"
layers="$(printf '%s' "$flat" | sed -n 's/.*"layers":\[\([^]]*\)\].*/\1/p')"
[ -n "$layers" ] || die "the manifest has no layers"
case "$layers" in
  *'"mediaType":"application/zip"'*) ;;
  *) die "the overlay's layer is not application/zip: $layers" ;;
esac
zip_digest="$(printf '%s' "$layers" | sed -n 's/.*"digest":"\(sha256:[a-f0-9]\{64\}\)".*/\1/p')"
[ -n "$zip_digest" ] || die "no sha256 digest in the manifest's layer: $layers"

fetch "$base/blobs/$zip_digest" "$WORK/overlay.zip" 'application/zip' blob
verify "$WORK/overlay.zip" "$zip_digest" "overlay zip"

mkdir -p "$DEST"
unzip -q -o "$WORK/overlay.zip" -d "$DEST"
log "unpacked $zip_digest into $DEST ($(find "$DEST" -type f | wc -l | tr -d ' ') files)"
