"""Sharpe-difference tests: Memmel closed form and the Ledoit–Wolf studentized block bootstrap,
checked against independent implementations written here from the published formulas."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from trading_core.errors import InsufficientDataError
from trading_core.shadow import sharpe as sharpe_module
from trading_core.shadow import sharpe_difference_test


def _correlated_normal(
    seed: int, n: int, rho: float, gain: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    chol = np.linalg.cholesky(np.array([[1.0, rho], [rho, 1.0]]))
    shocks = rng.standard_normal((n, 2)) @ chol.T * 0.01
    return shocks[:, 0] + 0.0003, shocks[:, 1] + 0.0003 + gain


def _memmel_reference(champion: np.ndarray, challenger: np.ndarray) -> tuple[float, float]:
    """Memmel (2003): (SR difference, z) from the formula, with numpy only."""
    n = champion.size
    sr_c = champion.mean() / champion.std()
    sr_n = challenger.mean() / challenger.std()
    rho = np.corrcoef(champion, challenger)[0, 1]
    theta = (2 - 2 * rho + 0.5 * (sr_c**2 + sr_n**2 - 2 * sr_c * sr_n * rho**2)) / n
    return sr_n - sr_c, (sr_n - sr_c) / math.sqrt(theta)


def _bartlett_lrv(centered: np.ndarray, lag: int) -> np.ndarray:
    n = centered.shape[0]
    lrv: np.ndarray = centered.T @ centered / n
    for j in range(1, lag + 1):
        gamma = centered[j:].T @ centered[:-j] / n
        lrv += (1 - j / (lag + 1)) * (gamma + gamma.T)
    return lrv


def _delta_se(champion: np.ndarray, challenger: np.ndarray, lag: int) -> tuple[float, float]:
    """Ledoit–Wolf (2008) delta-method difference and standard error, written out by hand."""
    mu_c, mu_n = champion.mean(), challenger.mean()
    g_c, g_n = (champion**2).mean(), (challenger**2).mean()
    diff = mu_n / math.sqrt(g_n - mu_n**2) - mu_c / math.sqrt(g_c - mu_c**2)
    grad = np.array(
        [
            -g_c / (g_c - mu_c**2) ** 1.5,
            g_n / (g_n - mu_n**2) ** 1.5,
            mu_c / (2 * (g_c - mu_c**2) ** 1.5),
            -mu_n / (2 * (g_n - mu_n**2) ** 1.5),
        ]
    )
    y = np.column_stack(
        [champion - mu_c, challenger - mu_n, champion**2 - g_c, challenger**2 - g_n]
    )
    return diff, math.sqrt(grad @ _bartlett_lrv(y, lag) @ grad / champion.size)


def _lw_bootstrap_reference(
    champion: np.ndarray, challenger: np.ndarray, block: int, samples: int, seed: int, lag: int
) -> tuple[float, float]:
    """Loop-by-loop studentized circular block bootstrap (one-sided p-values both tails)."""
    n = champion.size
    n_blocks = -(-n // block)
    diff, se = _delta_se(champion, challenger, lag)
    observed = diff / se
    starts = np.random.default_rng(seed).integers(0, n, size=(samples, n_blocks))
    greater = less = 0
    for row in starts:
        index = np.concatenate([(s + np.arange(block)) % n for s in row])
        c, m = champion[index], challenger[index]
        boot_diff = m.mean() / m.std() - c.mean() / c.std()
        mu_c, mu_n, g_c, g_n = c.mean(), m.mean(), (c**2).mean(), (m**2).mean()
        grad = np.array(
            [
                -g_c / (g_c - mu_c**2) ** 1.5,
                g_n / (g_n - mu_n**2) ** 1.5,
                mu_c / (2 * (g_c - mu_c**2) ** 1.5),
                -mu_n / (2 * (g_n - mu_n**2) ** 1.5),
            ]
        )
        y = np.column_stack([c - mu_c, m - mu_n, c**2 - g_c, m**2 - g_n])
        psi = np.zeros((4, 4))
        for j in range(n_blocks):
            zeta = y[j * block : (j + 1) * block].sum(axis=0) / math.sqrt(block)
            psi += np.outer(zeta, zeta) / n_blocks
        root = (boot_diff - diff) / math.sqrt(grad @ psi @ grad / index.size)
        greater += root >= observed
        less += root <= observed
    return (greater + 1) / (samples + 1), (less + 1) / (samples + 1)


@pytest.mark.parametrize(
    ("seed", "n", "rho", "gain"),
    [(1, 672, 0.7, 0.0), (2, 672, 0.9, 0.0005), (3, 200, 0.0, -0.001), (4, 5000, 0.95, 0.0001)],
)
def test_memmel_matches_formula_known_answer(seed: int, n: int, rho: float, gain: float) -> None:
    champion, challenger = _correlated_normal(seed, n, rho, gain)
    expected_diff, expected_z = _memmel_reference(champion, challenger)
    result = sharpe_difference_test(champion, challenger, method="memmel")
    assert result.estimate == pytest.approx(expected_diff, rel=1e-10)
    assert result.statistic == pytest.approx(expected_z, rel=1e-10)
    assert result.p_value == pytest.approx(norm.sf(expected_z), rel=1e-9)
    assert result.p_value_worse == pytest.approx(norm.cdf(expected_z), rel=1e-9)


@pytest.mark.parametrize(("seed", "lag"), [(5, 0), (6, 3), (7, None)])
def test_ledoit_wolf_standard_error_matches_hand_delta_method(seed: int, lag: int | None) -> None:
    champion, challenger = _correlated_normal(seed, 500, 0.6, 0.0002)
    used_lag = 5 if lag is None else lag  # Newey–West rule for 500 bars: floor(5.72) = 5
    diff, se = _delta_se(champion, challenger, used_lag)
    result = sharpe_difference_test(
        champion, challenger, method="ledoit_wolf_bootstrap", bootstrap_samples=9, max_lag=lag
    )
    assert result.estimate == pytest.approx(diff, rel=1e-10)
    assert result.standard_error == pytest.approx(se, rel=1e-10)
    assert result.statistic == pytest.approx(diff / se, rel=1e-10)


@pytest.mark.parametrize(("seed", "n", "block"), [(8, 120, 10), (9, 97, 24), (10, 50, 1)])
def test_ledoit_wolf_p_values_match_loop_reference(seed: int, n: int, block: int) -> None:
    champion, challenger = _correlated_normal(seed, n, 0.5, 0.002)
    samples, boot_seed = 60, 123
    lag = math.floor(4 * (n / 100) ** (2 / 9))
    expected = _lw_bootstrap_reference(champion, challenger, block, samples, boot_seed, lag)
    result = sharpe_difference_test(
        champion,
        challenger,
        method="ledoit_wolf_bootstrap",
        block_length_bars=block,
        bootstrap_samples=samples,
        seed=boot_seed,
    )
    assert (result.p_value, result.p_value_worse) == pytest.approx(expected, abs=1e-12)


def test_ledoit_wolf_same_seed_identical_result() -> None:
    champion, challenger = _correlated_normal(11, 672, 0.8, 0.0003)
    first = sharpe_difference_test(champion, challenger, method="ledoit_wolf_bootstrap", seed=3)
    second = sharpe_difference_test(champion, challenger, method="ledoit_wolf_bootstrap", seed=3)
    other = sharpe_difference_test(champion, challenger, method="ledoit_wolf_bootstrap", seed=4)
    assert first == second
    assert other.p_value != first.p_value
    assert other.p_value == pytest.approx(first.p_value, abs=0.02)


def test_ledoit_wolf_chunking_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    champion, challenger = _correlated_normal(12, 300, 0.8, 0.0003)
    whole = sharpe_difference_test(champion, challenger, method="ledoit_wolf_bootstrap", seed=1)
    monkeypatch.setattr(sharpe_module, "_BOOTSTRAP_CHUNK_VALUES", 1000)
    chunked = sharpe_difference_test(champion, challenger, method="ledoit_wolf_bootstrap", seed=1)
    assert whole == chunked


def test_ledoit_wolf_tails_sum_to_one_plus_one_sample() -> None:
    champion, challenger = _correlated_normal(13, 400, 0.6)
    result = sharpe_difference_test(
        champion, challenger, method="ledoit_wolf_bootstrap", bootstrap_samples=999
    )
    # without ties every replication lands in exactly one tail: (M + 2) / (M + 1)
    assert result.p_value + result.p_value_worse == pytest.approx(1001 / 1000, rel=1e-12)


@pytest.mark.parametrize(("seed", "gain"), [(14, 0.0), (15, 0.0003), (16, 0.0006), (17, -0.0004)])
def test_ledoit_wolf_agrees_with_memmel_on_iid_normal_data(seed: int, gain: float) -> None:
    champion, challenger = _correlated_normal(seed, 3000, 0.7, gain)
    memmel = sharpe_difference_test(champion, challenger, method="memmel")
    robust = sharpe_difference_test(
        champion, challenger, method="ledoit_wolf_bootstrap", bootstrap_samples=999, seed=seed
    )
    # under i.i.d. normality both standard errors estimate the same quantity
    assert robust.standard_error == pytest.approx(memmel.standard_error, rel=0.1)
    assert robust.estimate == pytest.approx(memmel.estimate, rel=1e-10)
    # direction and magnitude: the bootstrap p-value as a z agrees with Memmel's z
    robust_z = norm.isf(min(max(robust.p_value, 1e-3), 1 - 1e-3))
    assert abs(robust_z - min(max(memmel.statistic, -3.09), 3.09)) < 0.4


@pytest.mark.parametrize("method", ["memmel", "ledoit_wolf_bootstrap"])
def test_constant_series_sharpe_undefined_raises(method: str) -> None:
    with pytest.raises(InsufficientDataError, match="zero variance"):
        sharpe_difference_test([0.0] * 50, np.linspace(-0.01, 0.01, 50), method=method)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "t_test"}, "allowed: memmel, ledoit_wolf_bootstrap"),
        ({"method": "ledoit_wolf_bootstrap", "block_length_bars": 0}, "block_length_bars=0"),
        ({"method": "ledoit_wolf_bootstrap", "block_length_bars": 51}, "block_length_bars=51"),
        ({"method": "ledoit_wolf_bootstrap", "bootstrap_samples": 0}, "bootstrap_samples=0"),
    ],
)
def test_bad_options_raise_naming_allowed_values(kwargs: dict[str, object], match: str) -> None:
    champion, challenger = _correlated_normal(18, 50, 0.5)
    with pytest.raises(ValueError, match=match):
        sharpe_difference_test(champion, challenger, **kwargs)  # type: ignore[arg-type]
