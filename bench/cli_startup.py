"""``python bench/cli_startup.py``: start-up of the command line against named peers.

Median (and min) wall seconds, and the median CPU seconds (user + system, which a loaded shared
machine inflates least), of ``repeats`` fresh processes, in the same run:

- ``python -c pass``: the interpreter alone (the floor);
- ``coin-engine --help``: the root app lists every group from its command table, importing none;
- ``coin-engine brain ls``: config (pydantic), the Brain Library (SQLAlchemy) and a query, on a
  temporary SQLite library (migrated once, before the timing);
- ``dagster --help``: the peer CLI of the training half;

- loading the Dagster code location (``import engine_assets.definitions``): what every step
  process of a multiprocess run, ``dagster definitions validate`` and a UI reload pay, against
  ``import dagster`` alone (no target; xgboost, scipy.stats, statsmodels and distributed are
  imported where they are used, not at load);

then the heaviest imports of ``brain ls`` (``python -X importtime``, self time summed per
top-level package). The machine is shared: the load average is printed with the figures. The
target (issue 15) is <= 0.5 s for ``--help`` and ``brain ls``.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

BIN = Path(sys.executable).parent
TARGET_S = 0.5


def _timed(
    command: list[str], env: dict[str, str], repeats: int
) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system, the child's) seconds of each of ``repeats`` runs."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return walls, cpus


def _heaviest_imports(env: dict[str, str], top: int) -> list[tuple[str, float]]:
    """Self import time (ms) per top-level package of one ``brain ls``."""
    probe = (
        "import sys; sys.argv = ['coin-engine', 'brain', 'ls']\n"
        "from coin_engine.cli.app import run\n"
        "try:\n    run()\nexcept SystemExit:\n    pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    per_package: dict[str, float] = defaultdict(float)
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, self_us, _, name = (part.strip() for part in line.replace(":", "|", 1).split("|"))
        per_package[name.split(".")[0]] += int(self_us) / 1000
    return sorted(per_package.items(), key=lambda kv: -kv[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=12, help="heaviest import packages shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "ENGINE__TRAINING__MODEL_VERSIONING__BRAIN_LIBRARY_DSN": f"sqlite:///{tmp}/b.db",
            "ENGINE__TRAINING__MODEL_VERSIONING__STORAGE_PATH": f"{tmp}/artifacts",
            "ENGINE__OBSERVABILITY__LOG_PATH": f"{tmp}/cli.log",
            "COLUMNS": "120",
        }
        coin_engine = str(BIN / "coin-engine")
        subprocess.run([coin_engine, "brain", "migrate"], env=env, check=True, capture_output=True)
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "coin-engine --help": [coin_engine, "--help"],
            "coin-engine brain ls": [coin_engine, "brain", "ls"],
            "dagster --help (peer)": [str(BIN / "dagster"), "--help"],
            # what every Dagster step process, `definitions validate` and a UI reload pays
            "load engine_assets defs": [
                sys.executable,
                "-W",
                "ignore",
                "-c",
                "import engine_assets.definitions",
            ],
            "import dagster (peer)": [sys.executable, "-c", "import dagster"],
        }
        print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
        print(f"{'command':<24} {'median s':>9} {'min s':>7} {'cpu s':>7}  target (wall)")
        for name, command in cases.items():
            times, cpus = _timed(command, env, args.repeats)
            median = statistics.median(times)
            target = (
                ""
                if not name.startswith("coin-engine")
                else ("ok" if median <= TARGET_S else f"OVER {TARGET_S} s")
            )
            cpu = statistics.median(cpus)
            print(f"{name:<24} {median:9.3f} {min(times):7.3f} {cpu:7.3f}  {target}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        print("heaviest imports of `brain ls` (self ms per top-level package, one run):")
        for package, ms in _heaviest_imports(env, args.top):
            print(f"  {package:<28} {ms:8.1f}")


if __name__ == "__main__":
    main()
