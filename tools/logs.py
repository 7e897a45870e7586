"""Print the Lambda functions' log lines from CloudWatch Logs (JSON lines pretty-printed on one line each)."""

from __future__ import annotations

import sys

import boto3
from sandbox import default_environment, load_outputs

FUNCTIONS = {
    "api": "ApiFunctionName",
    "file-validator": "FileValidatorFunctionName",
    "processor": "ProcessorFunctionName",
    "restocker": "RestockerFunctionName",
    "sweeper": "SweeperFunctionName",
}


def main(argv: list[str]) -> int:
    default_environment()
    outputs = load_outputs()
    wanted = argv or list(FUNCTIONS)
    unknown = [name for name in wanted if name not in FUNCTIONS]
    if unknown:
        print(f"unknown function {unknown[0]!r}; pick one of {', '.join(FUNCTIONS)}", file=sys.stderr)
        return 2
    logs = boto3.client("logs")
    for name in wanted:
        group = f"/aws/lambda/{outputs[FUNCTIONS[name]]}"
        print(f"=== {group}")
        try:
            for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
                for event in page.get("events", []):
                    line = event["message"].rstrip()
                    if line.startswith(("START ", "END ", "REPORT ")):
                        continue
                    print(line)
        except logs.exceptions.ResourceNotFoundException:
            print("(no logs yet)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
