"""The stack outputs (.sandbox/outputs.json) as a pydantic model: what the tools and the e2e suite may rely on.

Read once, checked at the boundary: an outputs file from an older template (an output the tools now need is
missing) fails here, naming what is missing, not later as a KeyError. The deploy hook, which writes the file,
and `make url` run with a bare python3 (the emulator containers, the host before the virtualenv), so they read
it with `sandbox.load_outputs()`, the standard library's json, and never import this module.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError
from sandbox import OUTPUTS


class StackOutputs(BaseModel):
    """The outputs by their CloudFormation keys; any other output is kept as it is (extra)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    StackName: str
    ApiBaseUrl: str
    ApiId: str
    ApiStage: str
    OrdersTable: str
    DataLakeBucket: str
    OrderQueueUrl: str
    OrderDeadLetterQueueUrl: str
    FileQueueUrl: str
    FileDeadLetterQueueUrl: str
    RestockQueueUrl: str
    RestockDeadLetterQueueUrl: str
    ErrorTopicArn: str
    PendingTopicArn: str
    ApiFunctionName: str
    FileValidatorFunctionName: str
    ProcessorFunctionName: str
    RestockerFunctionName: str
    SweeperFunctionName: str
    Endpoint: str | None = None  # the emulator's; none on AWS
    Region: str | None = None  # written by tools/aws_deploy.py

    def __getitem__(self, key: str) -> str:
        """An output by its key, as in the file (the CLI's tables name outputs by key)."""
        value = self.as_dict().get(key)
        if value is None:
            raise KeyError(key)
        return value

    def as_dict(self) -> dict[str, str]:
        return {key: str(value) for key, value in self.model_dump().items() if value is not None}

    @classmethod
    def read(cls, path: Path = OUTPUTS) -> StackOutputs:
        """The outputs in `path`, or a SystemExit that says how to get them."""
        if not path.exists():
            raise SystemExit(f"no stack outputs at {path}: the sandbox is not deployed: run `make up`")
        try:
            return cls.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            missing = [".".join(map(str, error["loc"])) for error in exc.errors()]
            raise SystemExit(
                f"{path} is not what this checkout deploys ({', '.join(missing)}): run `make deploy`"
            ) from exc
