#!/bin/sh
# The custom runtime's entry point: deployed, this file would be ./bootstrap (provided.al2023 runs it).
# NODE is the Node 22 binary; the benchmark passes the one npm installs below the
# repository root. exec keeps the PID, so /proc figures are Node's own.
exec "${NODE:-node}" "$(dirname "$0")/runtime.mjs"
