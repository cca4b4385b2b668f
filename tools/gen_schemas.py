"""Write docs/result.schema.json from daemon.result.ResultRecord (the payload's one definition)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daemon.result import ResultRecord  # noqa: E402


def result_schema_text() -> str:
    schema = ResultRecord.model_json_schema(by_alias=True, mode="serialization")
    schema["$id"] = "https://ovedge.invalid/schemas/result-1.json"
    schema["title"] = "ovedge.result/1"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    (ROOT / "docs" / "result.schema.json").write_text(result_schema_text(), encoding="utf-8")
    print("wrote docs/result.schema.json")
