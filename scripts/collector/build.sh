#!/usr/bin/env bash
# Builds the OpenTelemetry Collector used by the end-to-end trace test with
# the official builder, once: later runs find it in the cache and return.
# Prints the binary's path (only the path, without building: --path).
# WSCANARY_CACHE overrides the cache directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version=$(sed -n 's/.*otlpreceiver \(v[0-9.]*\).*/\1/p' "$here/builder-config.yaml")
cache="${WSCANARY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wscanary}"
out="$cache/otelcol-$version"
bin="$out/otelcol-wscanary"
if [ -x "$bin" ] || [ "${1:-}" = "--path" ]; then
  echo "$bin"
  exit 0
fi
builder="$(go env GOPATH)/bin/builder"
if [ ! -x "$builder" ] || ! "$builder" version 2>/dev/null | grep -q "${version#v}"; then
  echo "scripts/collector: installing the collector builder $version" >&2
  GOFLAGS= go install "go.opentelemetry.io/collector/cmd/builder@$version" >&2
fi
mkdir -p "$out"
sed "s#\${OUTPUT_PATH}#$out#" "$here/builder-config.yaml" > "$out/builder-config.yaml"
echo "scripts/collector: building the collector into $out (a few minutes, once)" >&2
GOFLAGS= "$builder" --config "$out/builder-config.yaml" >&2
echo "$bin"
