#!/usr/bin/env bash
# Installs the Kafka-protocol broker `tansu` 0.6.0 (from crates.io, with its SQLite storage
# engine) for the distributed-mode end-to-end test (tests/distributed_tansu.rs), unless a tansu
# binary is already on PATH or in ~/.cargo/bin. Prints the binary's path.
#   tests/services/tansu.sh install
set -euo pipefail
version=0.6.0
case "${1:-install}" in
  install)
    for candidate in "$(command -v tansu || true)" "$HOME/.cargo/bin/tansu"; do
      if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" --version 2>/dev/null | grep -q "$version"; then
        echo "$candidate"
        exit 0
      fi
    done
    echo "installing tansu $version (cargo install, several minutes the first time)" >&2
    # its own target directory, so the workspace build is not disturbed
    CARGO_TARGET_DIR="${TMPDIR:-/tmp}/ods-tansu-build" \
      cargo install tansu --version "$version" --features dynostore,libsql --locked --quiet >&2
    echo "$HOME/.cargo/bin/tansu"
    ;;
  *)
    echo "usage: $0 install" >&2
    exit 2
    ;;
esac
