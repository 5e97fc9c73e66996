"""Monte-Carlo figures for the shadow-test promotion rules (trading_core.shadow).

Prints, for hourly bars over a shadow test of ``--days`` days:

1. size (rejection rate under equal strategies, nominal 0.05) of each one-sided test;
2. false-promotion and false-rejection rates of ``evaluate_challenger`` at one look;
3. the false-promotion rate when the verdict is re-evaluated daily from day 14 to day 28;
4. power (promotion rate) over a grid of annualized Sharpe improvement x correlation, at one
   look and (4b) with daily looks;
5. time per call, with statsmodels' OLS HAC fit as the named peer of the HAC test.

Figures are written to bench/results/shadow_false_promotion.json. Takes ~12 min at 1000 reps
on 2 cores (deterministic: seeded).

Data: champion and challenger per-bar returns with equal volatility, correlation ``rho`` and
AR(1) dynamics (``phi``), annualized Sharpe 1.0 for the champion; trades drawn as wins with a
given probability. Run: ``.venv/bin/python bench/shadow_false_promotion.py [--reps 1000]``.
"""

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import statsmodels.api as sm
from scipy.signal import lfilter

from trading_core.config.models import PromotionCriteria, ShadowTestingSection
from trading_core.shadow import (
    evaluate_challenger,
    paired_mean_difference_test,
    sharpe_difference_test,
)
from trading_core.types import bars_per_year

BPY = bars_per_year("1h")
VOL = 0.01
BURN_IN = 100
RESULTS = Path(__file__).resolve().parent / "results" / "shadow_false_promotion.json"
FloatArray = np.ndarray
Figures = dict[str, dict[str, Any]]


def simulate_pairs(
    rng: np.random.Generator,
    n_bars: int,
    *,
    rho: float,
    phi: float,
    sharpe_gain: float,
    sharpe_champion: float = 1.0,
) -> tuple[FloatArray, FloatArray]:
    """One (champion, challenger) pair of stationary AR(1) return series, unit-correlation rho."""
    chol = np.linalg.cholesky(np.array([[1.0, rho], [rho, 1.0]]))
    shocks = rng.standard_normal((n_bars + BURN_IN, 2)) @ chol.T
    unit = lfilter([math.sqrt(1.0 - phi**2)], [1.0, -phi], shocks, axis=0)[BURN_IN:]
    per_bar = VOL / math.sqrt(BPY)
    return (
        VOL * unit[:, 0] + sharpe_champion * per_bar,
        VOL * unit[:, 1] + (sharpe_champion + sharpe_gain) * per_bar,
    )


def simulate_trades(rng: np.random.Generator, n_trades: int, win_prob: float) -> FloatArray:
    return np.where(rng.random(n_trades) < win_prob, 0.01, -0.01)


def section(samples: int, *, thresholds: bool) -> ShadowTestingSection:
    criteria = (
        PromotionCriteria()
        if thresholds
        else PromotionCriteria(min_sharpe_improvement=-1e9, min_win_rate_improvement=-1.0)
    )
    return ShadowTestingSection(bootstrap_samples=samples, promotion_criteria=criteria)


def test_sizes(reps: int, days: int, samples: int, figures: Figures) -> None:
    print(f"\n1. one-sided test size under equal strategies, nominal 0.05 ({reps} reps)")
    for rho, phi in ((0.7, 0.0), (0.7, 0.3), (0.9, 0.3)):
        rng = np.random.default_rng(11)
        hits = np.zeros(3)
        for rep in range(reps):
            champ, chall = simulate_pairs(rng, days * 24, rho=rho, phi=phi, sharpe_gain=0.0)
            tests = (
                paired_mean_difference_test(champ, chall),
                sharpe_difference_test(champ, chall, method="memmel"),
                sharpe_difference_test(
                    champ,
                    chall,
                    method="ledoit_wolf_bootstrap",
                    bootstrap_samples=samples,
                    seed=rep,
                ),
            )
            hits += [t.p_value < 0.05 for t in tests]
        rates = ", ".join(
            f"{name} {rate:.3f}"
            for name, rate in zip(("HAC", "Memmel", "LW"), hits / reps, strict=True)
        )
        print(f"   rho={rho} phi={phi}: {rates}  (MC s.e. {math.sqrt(0.0475 / reps):.3f})")
        figures["size"][f"rho={rho},phi={phi}"] = dict(
            zip(("hac", "memmel", "ledoit_wolf"), (hits / reps).tolist(), strict=True)
        )


def verdict_rates(
    reps: int,
    days: int,
    samples: int,
    *,
    gain: float,
    rho: float,
    win_gain: float,
    thresholds: bool,
    sequential: bool,
) -> tuple[float, float]:
    """(promotion rate, significantly-worse rejection rate) of one look at the end of the test."""
    rng = np.random.default_rng(23)
    config = section(samples, thresholds=thresholds)
    decisions = []
    for rep in range(reps):
        champ, chall = simulate_pairs(rng, days * 24, rho=rho, phi=0.3, sharpe_gain=gain)
        verdict = evaluate_challenger(
            champ,
            chall,
            simulate_trades(rng, 150, 0.5),
            simulate_trades(rng, 150, 0.5 + win_gain),
            section=config,
            bars_per_year=BPY,
            duration_days=float(days),
            seed=rep,
            sequential_looks=sequential,
        )
        worse = verdict.reasons[0].startswith("challenger significantly worse")
        decisions.append("worse" if worse else verdict.decision)
    return decisions.count("promote") / reps, decisions.count("worse") / reps


def daily_looks_rate(
    reps: int,
    samples: int,
    *,
    sequential: bool,
    gain: float = 0.0,
    rho: float = 0.7,
    win_gain: float = 0.0,
    thresholds: bool = False,
) -> float:
    """Promotion rate when the verdict is taken daily from day 14 until it is not "wait"."""
    rng = np.random.default_rng(31)
    config = section(samples, thresholds=thresholds)
    promoted = 0
    for rep in range(reps):
        champ, chall = simulate_pairs(rng, 28 * 24, rho=rho, phi=0.3, sharpe_gain=gain)
        trades_c = simulate_trades(rng, 300, 0.5)
        trades_n = simulate_trades(rng, 300, 0.5 + win_gain)
        for day in range(14, 29):
            bars, trades = day * 24, round(300 * day / 28)
            verdict = evaluate_challenger(
                champ[:bars],
                chall[:bars],
                trades_c[:trades],
                trades_n[:trades],
                section=config,
                bars_per_year=BPY,
                duration_days=float(day),
                seed=rep,
                sequential_looks=sequential,
            )
            if verdict.decision != "wait":
                promoted += verdict.decision == "promote"
                break
    return promoted / reps


def timing(days: int, figures: Figures) -> None:
    rng = np.random.default_rng(5)
    champ, chall = simulate_pairs(rng, days * 24, rho=0.7, phi=0.3, sharpe_gain=0.0)
    lag = 6
    ones = np.ones(champ.size)
    calls: dict[str, Callable[[], object]] = {
        "paired_mean_difference_test": lambda: paired_mean_difference_test(champ, chall),
        "peer statsmodels OLS HAC fit": lambda: sm.OLS(chall - champ, ones).fit(
            cov_type="HAC", cov_kwds={"maxlags": lag, "use_correction": False}
        ),
        "sharpe memmel": lambda: sharpe_difference_test(champ, chall, method="memmel"),
        "sharpe ledoit_wolf (2000 samples)": lambda: sharpe_difference_test(
            champ, chall, method="ledoit_wolf_bootstrap", bootstrap_samples=2000
        ),
    }
    print(f"\n5. time per call on {champ.size} bars")
    for name, call in calls.items():
        repeats = 20
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        per_call_ms = 1e3 * (time.perf_counter() - start) / repeats
        figures["time_per_call_ms"][name] = round(per_call_ms, 3)
        print(f"   {name:36s} {per_call_ms:8.3f} ms")


def null_verdicts(reps: int, days: int, samples: int, figures: Figures) -> None:
    print("\n2. one look at the end, equal strategies (rho=0.7, phi=0.3, 150 trades each)")
    for thresholds in (False, True):
        for sequential in (False, True):
            promote, worse = verdict_rates(
                reps, days, samples, gain=0.0, rho=0.7, win_gain=0.0,
                thresholds=thresholds, sequential=sequential,
            )  # fmt: skip
            label = "default thresholds" if thresholds else "thresholds off (tests only)"
            figures["one_look_null"][f"{label}, sequential_looks={sequential}"] = {
                "false_promotion": promote,
                "rejected_significantly_worse": worse,
            }
            print(
                f"   {label:28s} sequential_looks={sequential!s:5s} false promotion "
                f"{promote:.3f}, rejected as significantly worse {worse:.3f}"
            )
    looks = max(reps // 2, 1)
    print(f"\n3. daily looks day 14..28 until the first promote, thresholds off ({looks} reps)")
    for sequential in (False, True):
        rate = daily_looks_rate(looks, samples, sequential=sequential)
        figures["daily_looks_null"][f"sequential_looks={sequential}"] = rate
        print(f"   sequential_looks={sequential!s:5s} false promotion {rate:.3f}")


def power(reps: int, days: int, samples: int, figures: Figures) -> None:
    power_reps = max(reps // 4, 1)
    print(
        f"\n4. power: promotion rate at the end, default thresholds, phi=0.3, win rate +0.15, "
        f"annualized Sharpe gain over champion's 1.0 ({power_reps} reps)"
    )
    for sequential in (False, True):
        for rho in (0.7, 0.9, 0.98):
            row = []
            for gain in (1.5, 3.0, 5.0):
                promote, _ = verdict_rates(
                    power_reps, days, samples, gain=gain, rho=rho, win_gain=0.15,
                    thresholds=True, sequential=sequential,
                )  # fmt: skip
                figures["power_one_look"][f"sequential={sequential},rho={rho},gain={gain}"] = (
                    promote
                )
                row.append(f"+{gain:.1f}: {promote:.2f}")
            print(f"   sequential_looks={sequential!s:5s} rho={rho:<5} " + "  ".join(row))
    daily_reps = max(reps // 8, 1)
    print(
        f"\n4b. power with daily looks day 14..28, sequential_looks=True, default thresholds, "
        f"rho=0.98, 300 trades each, win rate +0.15 ({daily_reps} reps)"
    )
    row = []
    for gain in (1.5, 3.0, 5.0):
        rate = daily_looks_rate(
            daily_reps, samples, sequential=True, gain=gain, rho=0.98, win_gain=0.15,
            thresholds=True,
        )  # fmt: skip
        figures["power_daily_looks"][f"rho=0.98,gain={gain}"] = rate
        row.append(f"+{gain:.1f}: {rate:.2f}")
    print("   " + "  ".join(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--samples", type=int, default=499, help="bootstrap samples per test")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    reps, days, samples = args.reps, args.days, args.samples
    print(f"hourly bars, {days} days ({days * 24} bars), bootstrap samples {samples}")
    figures: Figures = {
        "settings": {"reps": reps, "days": days, "bootstrap_samples": samples, "alpha": 0.05},
        "size": {},
        "one_look_null": {},
        "daily_looks_null": {},
        "power_one_look": {},
        "power_daily_looks": {},
        "time_per_call_ms": {},
    }
    test_sizes(reps, days, samples, figures)
    null_verdicts(reps, days, samples, figures)
    power(reps, days, samples, figures)
    timing(days, figures)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
