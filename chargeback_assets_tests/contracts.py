"""Where Confluent's recorded contracts live: `shared/contracts/ccloud` beside the repository.

`CHARGEBACK_CONTRACTS` overrides the location. A missing folder is a failure, not a skip: the contract
tests are how we know the sandbox speaks Confluent's wire format.
"""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONTRACTS = Path(os.environ.get("CHARGEBACK_CONTRACTS") or REPO.parent / "shared" / "contracts" / "ccloud")
EXAMPLES = CONTRACTS / "examples"

if not CONTRACTS.is_dir():
    raise RuntimeError(f"Confluent contracts not found at {CONTRACTS}; set CHARGEBACK_CONTRACTS")
