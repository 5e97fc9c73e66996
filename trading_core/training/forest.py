"""XGBoost forests as flat arrays, predicted by one numba kernel: many rows, each by its own forest.

XGBoost's ``predict`` costs ~0.25 ms per call whatever the number of rows (its per-call setup),
and a live service predicts one row per coin with that coin's own model: hundreds of calls per
bar. Flattened, every coin's model is a slice of one set of arrays and a single kernel call
predicts every coin. The kernel walks each tree as XGBoost's CPU predictor does (numerical
splits: left when ``value < split_condition``, a missing value follows the node's default
direction) and accumulates the leaf values in float32 onto the base score, tree by tree, so its
predictions are bit-identical to ``Booster.predict`` (tests assert it on trained models).

Supported: gbtree boosters with numerical splits, one target, and an objective whose output is
the raw margin (squared, pseudo-Huber, absolute error); anything else is refused. The model is
read from XGBoost's own JSON dump (``Booster.save_raw("json")``), the documented schema.
Reference: Chen and Guestrin (2016), "XGBoost: A Scalable Tree Boosting System", KDD.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numba
import numpy as np
import numpy.typing as npt

from trading_core.errors import TrainingError

if TYPE_CHECKING:  # only annotations: see trading_core.training.model
    import xgboost as xgb

FloatArray = npt.NDArray[np.float64]
IDENTITY_OBJECTIVES: Final = frozenset(
    {"reg:squarederror", "reg:pseudohubererror", "reg:absoluteerror"}
)


@dataclass(frozen=True)
class FlatForest:
    """Trees of one or more boosters as flat node arrays.

    Node ``i``: ``feature[i]`` (-1 for a leaf), ``threshold[i]``, children ``left[i]`` /
    ``right[i]``, ``default_left[i]`` (where a missing value goes), ``leaf_value[i]``. Tree
    ``t`` starts at node ``tree_root[t]``; forest ``f`` is trees
    ``forest_start[f] .. forest_start[f + 1] - 1`` on top of ``base_score[f]``.
    """

    feature: npt.NDArray[np.int32]
    threshold: npt.NDArray[np.float32]
    left: npt.NDArray[np.int32]
    right: npt.NDArray[np.int32]
    default_left: npt.NDArray[np.bool_]
    leaf_value: npt.NDArray[np.float32]
    tree_root: npt.NDArray[np.int32]
    forest_start: npt.NDArray[np.int64]
    base_score: npt.NDArray[np.float32]
    n_features: int

    def __post_init__(self) -> None:
        nodes = self.feature.shape
        for name in ("threshold", "left", "right", "default_left", "leaf_value"):
            if getattr(self, name).shape != nodes:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}; nodes {nodes}")
        if self.forest_start.shape != (self.base_score.size + 1,):
            raise ValueError("forest_start must hold one more entry than base_score")
        if self.n_features < 1 or (
            self.feature.size and int(self.feature.max()) >= self.n_features
        ):
            raise ValueError(f"split features must be < n_features={self.n_features}")

    @property
    def n_forests(self) -> int:
        return int(self.base_score.size)


def _base_score(model: dict[str, Any]) -> np.float32:
    raw = str(model["learner"]["learner_model_param"]["base_score"]).strip("[]")
    values = [v for v in raw.split(",") if v.strip()]
    if len(values) != 1:
        raise TrainingError(f"base_score {raw!r}: only single-target models are supported")
    return np.float32(float(values[0]))


def _check_supported(model: dict[str, Any]) -> None:
    learner = model["learner"]
    objective = learner["objective"]["name"]
    if objective not in IDENTITY_OBJECTIVES:
        raise TrainingError(
            f"objective {objective!r} transforms its margin; supported: "
            f"{sorted(IDENTITY_OBJECTIVES)}"
        )
    booster = learner["gradient_booster"]
    if booster.get("name") != "gbtree":
        raise TrainingError(f"booster {booster.get('name')!r}: only gbtree is supported")
    if int(learner["learner_model_param"].get("num_target", "1") or 1) > 1:
        raise TrainingError("multi-target models are not supported")


def flatten_booster(booster: "xgb.Booster") -> FlatForest:
    """One booster as a one-forest :class:`FlatForest` (TrainingError if unsupported)."""
    model = json.loads(bytes(booster.save_raw(raw_format="json")))
    _check_supported(model)
    trees = model["learner"]["gradient_booster"]["model"]["trees"]
    if any(int(t) != 0 for tree in trees for t in tree.get("split_type", [])):
        raise TrainingError("categorical splits are not supported")
    sizes = np.array([len(tree["left_children"]) for tree in trees], dtype=np.int64)
    roots = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
    offsets = np.repeat(roots, sizes)

    def column(key: str, dtype: type[np.generic]) -> npt.NDArray[Any]:
        values = [v for tree in trees for v in tree[key]]
        return np.asarray(values, dtype=dtype)

    left, right = column("left_children", np.int64), column("right_children", np.int64)
    leaf = left == -1
    conditions = column("split_conditions", np.float32)
    return FlatForest(
        feature=np.where(leaf, -1, column("split_indices", np.int64)).astype(np.int32),
        threshold=conditions,
        left=np.where(leaf, -1, left + offsets).astype(np.int32),
        right=np.where(leaf, -1, right + offsets).astype(np.int32),
        default_left=column("default_left", np.int64).astype(bool),
        leaf_value=np.where(leaf, conditions, np.float32(0.0)).astype(np.float32),
        tree_root=roots.astype(np.int32),
        forest_start=np.array([0, len(trees)], dtype=np.int64),
        base_score=np.array([_base_score(model)], dtype=np.float32),
        n_features=int(booster.num_features()),
    )


def stack_forests(forests: Sequence[FlatForest]) -> FlatForest:
    """Many forests as one (forest ``f`` of the result is ``forests[f]``)."""
    if not forests:
        raise ValueError("no forest to stack")
    widths = {f.n_features for f in forests}
    if len(widths) != 1:
        raise ValueError(f"forests read different numbers of features: {sorted(widths)}")
    node_offsets = np.cumsum([0] + [f.feature.size for f in forests[:-1]])
    tree_offsets = np.cumsum([0] + [f.tree_root.size for f in forests])

    def shifted(name: str) -> npt.NDArray[np.int32]:
        arrays = [
            np.where(getattr(f, name) >= 0, getattr(f, name) + off, -1)
            for f, off in zip(forests, node_offsets, strict=True)
        ]
        return np.concatenate(arrays).astype(np.int32)

    return FlatForest(
        feature=np.concatenate([f.feature for f in forests]),
        threshold=np.concatenate([f.threshold for f in forests]),
        left=shifted("left"),
        right=shifted("right"),
        default_left=np.concatenate([f.default_left for f in forests]),
        leaf_value=np.concatenate([f.leaf_value for f in forests]),
        tree_root=np.concatenate(
            [f.tree_root + off for f, off in zip(forests, node_offsets, strict=True)]
        ).astype(np.int32),
        forest_start=tree_offsets.astype(np.int64),
        base_score=np.concatenate([f.base_score for f in forests]),
        n_features=widths.pop(),
    )


def predict_forests(
    forest: FlatForest, features: npt.ArrayLike, forest_index: npt.ArrayLike
) -> FloatArray:
    """Row ``i`` predicted by forest ``forest_index[i]`` (NaN where the index is -1), as
    ``Booster.predict`` gives it (float32, returned as float64)."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    index = np.ascontiguousarray(forest_index, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != forest.n_features or index.shape != (x.shape[0],):
        raise ValueError(
            f"features {x.shape} must be (n_rows, {forest.n_features}) with one forest index "
            f"per row; got {index.shape}"
        )
    if index.size and not (index.min() >= -1 and index.max() < forest.n_forests):
        raise ValueError(f"forest indices must be in -1..{forest.n_forests - 1}")
    out = np.empty(x.shape[0], dtype=np.float32)
    _predict(
        forest.feature,
        forest.threshold,
        forest.left,
        forest.right,
        forest.default_left,
        forest.leaf_value,
        forest.tree_root,
        forest.forest_start,
        forest.base_score,
        x,
        index,
        out,
    )
    result: FloatArray = np.where(index >= 0, out.astype(np.float64), np.nan)
    return result


@numba.njit(cache=True, nogil=True)
def _predict(  # type: ignore[no-untyped-def]  # numba kernel
    feature, threshold, left, right, default_left, leaf_value, tree_root, forest_start,
    base_score, x, index, out,
):  # fmt: skip
    for row in range(x.shape[0]):
        f = index[row]
        if f < 0:
            out[row] = np.float32(0.0)
            continue
        total = base_score[f]
        for tree in range(forest_start[f], forest_start[f + 1]):
            node = tree_root[tree]
            while feature[node] >= 0:
                value = x[row, feature[node]]
                if np.isnan(value):
                    node = left[node] if default_left[node] else right[node]
                elif value < threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            total = np.float32(total + leaf_value[node])
        out[row] = total
