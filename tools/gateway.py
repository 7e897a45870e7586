"""Only for tools/openapi.py until it moves into the sandbox package: the gateway's refusal, from its one place."""

from sandbox.gateway import BUILT_IN_REFUSAL

__all__ = ["BUILT_IN_REFUSAL"]
