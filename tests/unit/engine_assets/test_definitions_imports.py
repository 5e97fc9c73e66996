"""Loading the code location is what every Dagster step process, `dagster definitions validate`
and each UI reload pays: it must not import the libraries only training or statistics calls use
(they are imported where called). Before: 4.9 s to import the definitions here, of which xgboost
(with sklearn and pandas) ~1.6 s, scipy.stats ~1.3 s, distributed ~0.7 s, statsmodels ~0.5 s."""

import json
import subprocess
import sys

# imported only where a model is trained, loaded or predicted, a cluster opened, a statistic taken
NOT_AT_LOAD = ("xgboost", "sklearn", "scipy.stats", "statsmodels", "distributed", "pandas")
PROBE = (
    "import json, sys, warnings\n"
    "warnings.simplefilter('ignore')\n"
    "import engine_assets.definitions\n"
    f"print(json.dumps(sorted(m for m in {NOT_AT_LOAD!r} if m in sys.modules)))\n"
)


def test_code_location_loads_without_training_and_statistics_libraries() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
