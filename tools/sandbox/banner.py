"""Print what `make up` leaves running: the API URL and ready-to-paste commands for the lab's example."""

from __future__ import annotations

import sys

from sandbox.aws import load_outputs


def main() -> None:
    outputs = load_outputs()
    base = outputs["ApiBaseUrl"]
    if "--url" in sys.argv[1:]:
        print(base)
        return
    # The commands set API themselves, as the README's do: they work pasted into any new shell.
    print(f"""
Sandbox ready.
  API URL:      {base}
  Data lake:    s3://{outputs["DataLakeBucket"]}/incoming/
  Outputs:      .sandbox/outputs.json (make outputs)

Post the lab's example order:
  API=$(make -s url)
  curl -s -X POST "$API/orders" -H 'Content-Type: application/json' --data @seed/orders/lab-example.json

Then follow it:
  .venv/bin/sandbox watch ORD-20231001-0001
  curl -s "$API/orders/ORD-20231001-0001"
  curl -s "$API/products/PRD-1001"
""")


if __name__ == "__main__":
    main()
