#!/usr/bin/env bash
# Deploy hook: runs as a LocalStack/MiniStack init hook (ready.d) and from the host (`make deploy`).
# MiniStack runs hooks with `sh` whatever the shebang says: re-run under bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PROJECT_ROOT="${PROJECT_ROOT:-$(cd "$here/../../.." && pwd)}"
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://localhost:4566}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
exec "${PYTHON:-python3}" "$PROJECT_ROOT/tools/deploy.py" --sandbox "$@"
