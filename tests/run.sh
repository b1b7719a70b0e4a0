#!/usr/bin/env bash
# The test command of ods (README): installs what the tests need, then checks formatting, lints
# with warnings as errors, and runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# Third-party checks must run, not be skipped (see tests/avro_third_party.rs).
export ODS_THIRD_PARTY_TESTS=1

# librdkafka is built with OpenSSL (Kafka TLS/SASL): it needs the headers and pkg-config.
if ! dpkg -s libssl-dev pkg-config >/dev/null 2>&1; then
  echo "installing libssl-dev and pkg-config (apt) for librdkafka's TLS support"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev pkg-config >/dev/null
fi
if ! python3 -c "import fastavro" >/dev/null 2>&1; then
  echo "installing fastavro (Python) for the third-party Avro check"
  python3 -m pip install --quiet --disable-pip-version-check fastavro
fi
if ! command -v st >/dev/null 2>&1; then
  echo "installing schemathesis (Python) for the API conformance check"
  python3 -m pip install --quiet --disable-pip-version-check schemathesis
fi

if ! python3 -c "import chdb" >/dev/null 2>&1; then
  echo "installing chdb (Python) for the ClickHouse SQL check"
  python3 -m pip install --quiet --disable-pip-version-check chdb
fi
# Service tests (ClickHouse, tansu) must run, not be skipped: start a local server (installs via apt).
export ODS_SERVICE_TESTS=1
ODS_CLICKHOUSE_URL="$(./tests/services/clickhouse.sh start)"
export ODS_CLICKHOUSE_URL
# ... and a real Kafka-protocol broker process for the distributed end-to-end test.
ODS_TANSU="$(./tests/services/tansu.sh install)"
export ODS_TANSU

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== schemathesis against the running API"
cargo build --locked -p ods
./tests/schemathesis.sh "${CARGO_TARGET_DIR:-target}/debug/ods"
echo "== cargo test"
cargo test --workspace --locked
