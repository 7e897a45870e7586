"""The sandbox's tools, one idea per module.

`aws` (settings, session defaults, the stack outputs file), `poll` (the one wait-until), `records` (the tools'
data as pydantic models), `deploy/` (one core; the sandbox and AWS deployers on it), `load` (the one order
factory), `cli` (the `sandbox` command), `bench`, `soak`, and the small tools (`seed`, `dlq`, `logs`,
`notifications`, `gateway`, `chaos`, `emulator`, `banner`).

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
