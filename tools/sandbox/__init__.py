"""The sandbox's tools, one idea per module.

`aws` (settings, session defaults, the stack outputs file), `poll` (the one wait-until), `records` (the tools'
data as pydantic models), `deploy/` (one core; the sandbox and AWS deployers on it), `load` (the one order
factory), `state` (reading the stack: the table, queue depths, its functions), `cli` (the `sandbox` command),
`bench`, `soak`, the small tools (`seed`, `dlq`, `notifications`, `gateway`, `chaos`, `emulator`, `banner`), and
the generators of committed files (`model`: the API Gateway model and the validator; `openapi`, from the answers'
models in `api_shapes`).

`aws`, `poll`, `deploy`, `seed`, `notifications`, `emulator` and `banner` import the standard library and boto3
only: the deploy hook runs them inside the emulator containers, and `make up`/`make url` before the venv exists.
"""

import sys
from pathlib import Path

# The domain (functions/: orders, service) as the Lambdas import it: the CLI, bench, soak and dlq use its masking,
# validation and key layout rather than copies of them.
_FUNCTIONS = str(Path(__file__).resolve().parents[2] / "functions")
if _FUNCTIONS not in sys.path:
    sys.path.append(_FUNCTIONS)
