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
# No __pycache__ in the checkout: written from a container, it would belong to root.
export PYTHONDONTWRITEBYTECODE=1

# Both images run the hook as root, so on rootful Docker what it writes in the mounted checkout would
# belong to root. Give .sandbox/ back to the checkout's owner, even when the deploy fails. Run by the
# owner (`make deploy`, rootless Docker), this changes nothing.
give_back_sandbox() {
    local sandbox="${SANDBOX_DIR:-$PROJECT_ROOT/.sandbox}" owner
    [ "$EUID" -eq 0 ] && [ -d "$sandbox" ] || return 0
    case "$sandbox" in "$PROJECT_ROOT"/*) ;; *) return 0 ;; esac
    owner="$(stat -c %u:%g "$PROJECT_ROOT")" || return 0
    chown -hR "$owner" "$sandbox" || echo "10-deploy.sh: could not give $sandbox to $owner" >&2
}
trap give_back_sandbox EXIT

# The tools are the package tools/sandbox/; its deployer needs only boto3 and the standard library.
export PYTHONPATH="$PROJECT_ROOT/tools${PYTHONPATH:+:$PYTHONPATH}"
"${PYTHON:-python3}" -m sandbox.deploy.local
