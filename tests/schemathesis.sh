#!/usr/bin/env bash
# Exercises the running API with schemathesis (a real HTTP client driven by our OpenAPI spec):
# no server error, every response conforms to the spec (status, content type, schema).
# Usage: tests/schemathesis.sh path/to/ods
set -euo pipefail
ods="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

reporter=$("$ods" --data-dir "$work/data" tokens create --role reporter --big 19012345601 --service-id AD0001)
analyst=$("$ods" --data-dir "$work/data" tokens create --role analyst)
ODS_RATE_LIMIT_PER_MINUTE=1000000 ODS_RATE_LIMIT_BURST=100000 RUST_LOG=warn \
  "$ods" --data-dir "$work/data" run --listen 127.0.0.1:0 > "$work/out" 2> "$work/err" &
pid=$!
for _ in $(seq 1 100); do
  grep -q "ods is running at" "$work/out" 2>/dev/null && break
  sleep 0.1
done
base=$(sed -n 's/^ods is running at \(http:[^ ]*\).*/\1/p' "$work/out")
[ -n "$base" ] || { echo "ods did not start"; cat "$work/err"; exit 1; }

# schemathesis keeps a cache in the working directory: keep it out of the repository
cd "$work"
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
status=0
# doctors' endpoints with a reporter token, statistics and signals with an analyst token
st run "$base/api/v1/openapi.json" -H "Authorization: Bearer $reporter" \
  --exclude-path-regex '^/api/v1/(stats|signals)' --checks "$checks" --max-examples 40 --seed 7 || status=1
st run "$base/api/v1/openapi.json" -H "Authorization: Bearer $analyst" \
  --include-path-regex '^/api/v1/(stats|signals)' --checks "$checks" --max-examples 40 --seed 7 || status=1
exit $status
