"""Print what `make up` leaves running: the API URL and a ready-to-paste curl of the lab's example."""

from __future__ import annotations

import sys

from sandbox import load_outputs


def main() -> None:
    outputs = load_outputs()
    base = outputs["ApiBaseUrl"]
    if "--url" in sys.argv[1:]:
        print(base)
        return
    print(f"""
Sandbox ready.
  API URL:      {base}
  Data lake:    s3://{outputs["DataLakeBucket"]}/incoming/
  Outputs:      .sandbox/outputs.json (make outputs)

Post the lab's example order:
  curl -s -X POST '{base}/orders' -H 'Content-Type: application/json' --data @seed/orders/lab-example.json

Then follow it:
  curl -s '{base}/orders/ORD-20231001-0001'
  curl -s '{base}/products/PRD-1001'
""")


if __name__ == "__main__":
    main()
