"""The tools' data as pydantic models, each read and written through its model: one place to look a shape up.

Read once, checked at the boundary: an outputs file from an older template fails here, naming what is missing,
not later as a KeyError. The deploy hook and `make url` run with a bare python3 (the emulator containers, the host
before the virtualenv), so `make url` reads the outputs with `aws.load_outputs()` and the hook never imports this.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel, StrictInt, ValidationError, computed_field

from sandbox.aws import OUTPUTS, SANDBOX


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
    Region: str | None = None  # written by sandbox.deploy.aws

    def __getitem__(self, key: str) -> str:
        """An output by its key, as in the file (the CLI's tables name outputs by key)."""
        return self.as_dict()[key]

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


# --- the seed file ----------------------------------------------------------------------------------------------


class SeedError(ValueError):
    """A seed file that cannot be read or does not hold products."""


class Product(BaseModel):
    model_config = ConfigDict(extra="allow")

    product_id: str = Field(min_length=1)
    available: StrictInt = Field(ge=0)
    description: str = ""


class SeedFile(RootModel[list[Product]]):
    """`[{"product_id", "description", "available"}]`: `available` becomes the stock's, `reserved` is kept."""

    @classmethod
    def read(cls, path: Path) -> SeedFile:
        try:
            return cls.model_validate_json(path.read_bytes())
        except OSError as exc:
            raise SeedError(f"{path}: {exc}") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "".join(f"[{part}]" for part in first["loc"])
            raise SeedError(
                f"{path}{where}: {first['msg']} (needs product_id (text) and available (integer >= 0))"
            ) from exc

    def rows(self) -> list[dict[str, Any]]:
        return [product.model_dump() for product in self.root]


# --- restocks ---------------------------------------------------------------------------------------------------


class RestockBody(BaseModel):
    """What POST /products/{id}/restock takes."""

    quantity: int


class RestockLine(RestockBody):
    """One line of a restock file (restock/*.json)."""

    product_id: str


class Restock(BaseModel):
    """What GET /restocks/{id} answers, as far as the tools read it."""

    restock_status: str | None = None
    released_at: str | None = None
    released_orders: list[str] = []
    released_count: int | None = None

    @property
    def state(self) -> str:
        return "released" if self.released_at else str(self.restock_status)


# --- bench (bench/results/*.json) and soak (.sandbox/soak-last.json) results ----------------------------------


class Machine(BaseModel):
    nproc: int | None
    cpu_count: int | None
    cpu_model: str | None
    python: str
    platform: str
    ministack: str | None
    endpoint: str


class MakeUp(BaseModel):
    measured: bool
    note: str
    seconds: float | None = None
    cold_start: bool | None = None


class InProcess(BaseModel):
    orders: int
    mean_payload_bytes: int
    repeats: int
    json_loads_per_s: float
    validate_per_s: float
    parse_json_validate_per_s: float
    validate_vs_json_loads: float
    parse_validate_vs_json_loads: float


class Ratio(BaseModel):
    value: float | None
    target: str | None
    met: bool | None
    meaning: str


class BenchOptions(BaseModel):
    n: int
    clients: int
    file_n: int
    quick: bool
    skip_floors: bool
    skip_datalake: bool
    # how this run waits and where it writes: not part of the result
    timeout: float = Field(1200.0, exclude=True)
    in_process_n: int = Field(2000, exclude=True)
    results_dir: Path = Field(Path("bench/results"), exclude=True)
    picture_to: Path | None = Field(None, exclude=True)
    plot: Path | None = Field(None, exclude=True)


class BenchResult(BaseModel):
    """One bench run; the API, data-lake and floor sections are nested dicts (many figures, only displayed)."""

    run_id: str
    started_at: str
    options: BenchOptions
    machine: Machine
    make_up: MakeUp
    in_process: InProcess | None = None
    api: dict[str, Any] = {}
    floors: dict[str, Any] = {}
    datalake: dict[str, Any] = {}
    ratios: dict[str, Ratio] = {}
    notes: list[str] = []
    duration_seconds: float | None = None

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        text = self.model_dump_json(indent=2) + "\n"
        path = directory / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{self.run_id}.json"
        path.write_text(text, "utf-8")
        (directory / "latest.json").write_text(text, "utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> BenchResult:
        return cls.model_validate_json(path.read_bytes())


class Kill(BaseModel, frozen=True):
    """A Lambda worker the chaos monkey killed, `at` seconds after it started."""

    function: str
    pid: int
    at: float


class ChaosSummary(BaseModel):
    interval_seconds: float
    kills: int
    kills_per_function: dict[str, int]
    killed: list[Kill]


class StockBooks(BaseModel):
    initial: int
    restocked: int
    available: int
    reserved: int


SOAK_LAST = SANDBOX / "soak-last.json"


class SoakResult(BaseModel):
    """A soak's books; `ok` when every check holds."""

    run_id: str
    orders: int
    received: int
    accepted: int
    rejected: int
    replayed: int
    final: int
    lost: int
    pending_orders: int
    restocks: int
    released_orders: int
    files: int
    files_with_rejections: int
    poison: int
    poison_in_dlq: int
    oversold_units: int
    stock: dict[str, StockBooks]
    seconds_to_all_final: float
    repeated_released_messages: int
    retried_requests: int
    given_up_requests: int
    given_up: list[str]
    dead_letters_not_poison: dict[str, Any]
    recovery_limit_seconds: float
    longest_recebido_seconds: float
    recebido_orders: int  # orders whose time `Recebido` was measured, from their records
    orders_recebido_over_limit: list[str]
    chaos: ChaosSummary | None
    checks: dict[str, bool]

    @computed_field  # written with the books, for whoever reads them
    @property
    def ok(self) -> bool:
        return all(self.checks.values())

    def failed(self) -> list[str]:
        return [check for check, passed in self.checks.items() if not passed]

    def write(self, path: Path = SOAK_LAST) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2) + "\n", "utf-8")
        return path

    @classmethod
    def read(cls, path: Path = SOAK_LAST) -> SoakResult:
        return cls.model_validate_json(path.read_bytes())
