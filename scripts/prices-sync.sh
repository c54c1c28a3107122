#!/usr/bin/env bash
# Fetches the newest LiteLLM and genai-prices packages into a temporary directory, extracts their price
# data, and runs `llmledger prices diff` against it (with the accepted list of pricing/snapshots/).
#
#   scripts/prices-sync.sh            # report only
#   scripts/prices-sync.sh --update   # also replace the committed snapshot in pricing/snapshots/
#   scripts/prices-sync.sh --all      # further arguments go to `llmledger prices diff` (--all, --json, --at)
#
# LiteLLM ships model_prices_and_context_window_backup.json in its wheel. genai-prices ships its data
# as Python (genai_prices/data.py); it is written out as JSON here, every price as a decimal string, so
# nothing passes through a float. Needs pip, python3 and unzip. Exit status: that of the diff (non-zero
# when a disagreement is neither noted in the data nor accepted, or a current chat model is unresolved).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

update=false
if [[ "${1:-}" == "--update" ]]; then
    update=true
    shift
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && pip download --quiet --no-deps litellm genai-prices)

litellm_whl="$(ls "$work"/litellm-*.whl)"
genai_whl="$(ls "$work"/genai_prices-*.whl)"
version_of() { basename "$1" | cut -d- -f2; }
unzip -q -o "$litellm_whl" 'litellm/model_prices_and_context_window_backup.json' -d "$work/litellm"
unzip -q -o "$genai_whl" -d "$work/genai"
litellm_json="$work/litellm/litellm/model_prices_and_context_window_backup.json"
genai_json="$work/genai-prices-data.json"

# genai_prices/data.py → JSON. Its update module imports an HTTP client at import time that the bundled
# data does not need, so a stand-in module is installed for it.
PYTHONPATH="$work/genai" python3 - "$genai_json" <<'PY'
import dataclasses, datetime, decimal, json, sys, types
stub = types.ModuleType("httpx2")
stub.Timeout = lambda **kwargs: None
sys.modules.setdefault("httpx2", stub)
from genai_prices import data


def plain(v):
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (datetime.date, datetime.datetime, datetime.time)):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items() if x is not None}
    if dataclasses.is_dataclass(v):
        # `or_` / `and_` are the JSON `or` / `and` of match clauses.
        return {f.name.rstrip("_"): plain(getattr(v, f.name)) for f in dataclasses.fields(v)
                if not f.name.startswith("_") and getattr(v, f.name, None) is not None}
    if hasattr(v, "__dict__"):  # ModelPrice: its price keys
        return {k: plain(x) for k, x in vars(v).items() if x is not None and not k.startswith("_")}
    return v


with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump(plain(data.providers), out, indent=1, ensure_ascii=False)
    out.write("\n")
PY

echo "litellm $(version_of "$litellm_whl"), genai-prices $(version_of "$genai_whl")"
if $update; then
    cp "$litellm_json" pricing/snapshots/litellm-model_prices_and_context_window.json
    cp "$genai_json" pricing/snapshots/genai-prices-data.json
    echo "snapshot replaced: update pricing/snapshots/README.md (versions, date)"
fi
cargo run --quiet -p llmledger-cli -- prices diff \
    --litellm "$litellm_json" --genai-prices "$genai_json" --accepted pricing/snapshots/accepted.json "$@"
