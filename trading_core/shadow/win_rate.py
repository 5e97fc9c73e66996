"""Win-rate comparison of two trade lists: the pooled two-proportion z test.

A trade is a win when its net return (after costs) is strictly positive; a flat trade is not a
win. With ``k`` wins in ``n`` trades per side and the pooled rate ``p = (k_c + k_n) / (n_c + n_n)``,

    z = (k_n / n_n - k_c / n_c) / sqrt(p (1 - p) (1 / n_c + 1 / n_n)),

the large-sample score test for two independent binomial proportions (e.g. Agresti,
*Categorical Data Analysis*, 3rd ed., 2013, section 2.4; statsmodels' ``proportions_ztest``).
The two trade lists come from models trading the same bars, so their outcomes are positively
correlated; treating them as independent overstates the variance of the difference, which makes
the test conservative rather than liberal.
"""

import math

import numpy as np
import numpy.typing as npt

from trading_core.errors import InsufficientDataError
from trading_core.shadow.paired import as_return_series, one_sided_normal


def win_count(trade_returns: npt.ArrayLike, *, name: str = "trade returns") -> tuple[int, int]:
    """(wins, trades) for per-trade net returns; a win is a return > 0."""
    returns = as_return_series(trade_returns, name=name)
    return int(np.count_nonzero(returns > 0.0)), int(returns.size)


def win_rate_difference(
    champion_trades: npt.ArrayLike, challenger_trades: npt.ArrayLike
) -> tuple[float, float]:
    """(challenger win rate - champion win rate, one-sided p-value that the challenger's is higher).

    Inputs are per-trade net returns (e.g. ``[t.net_return for t in trades]``). When every
    trade of both lists is a win, or none is, the difference is 0 and the p-value 0.5.
    """
    wins_champ, n_champ = win_count(champion_trades, name="champion trade returns")
    wins_chall, n_chall = win_count(challenger_trades, name="challenger trade returns")
    if n_champ == 0 or n_chall == 0:
        raise InsufficientDataError(
            f"win rates need trades on both sides; champion has {n_champ}, challenger has {n_chall}"
        )
    difference = wins_chall / n_chall - wins_champ / n_champ
    pooled = (wins_champ + wins_chall) / (n_champ + n_chall)
    standard_error = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_champ + 1.0 / n_chall))
    _, p_better, _ = one_sided_normal(difference, standard_error)
    return difference, p_better
