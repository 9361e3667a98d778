"""The booster trained with `xgboost.dask` on a cluster: same parameters, early stopping and threshold rule
as `fraud.models.booster.fit_booster`, rows split over the workers.

    model = FraudModel(cfg).fit(train, val, booster_fitter=dask_booster_fitter(client))

Not bit-identical to one process: each worker sketches its own rows' histogram bins and XGBoost merges the
sketches (an approximation of the global quantiles), and row subsampling draws per worker; the number of
trees early stopping keeps and the validation threshold follow from those scores, so they can move a little
too (tests/fraud/test_scale_booster.py bounds the difference).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fraud.models.booster import BoosterConfig, booster_params


def dask_booster_fitter(client, rows_per_chunk: int | None = None) -> Callable:
    """A `fit_booster`-shaped function (x_tr, y_tr, x_va, y_va, names, cfg, seed) -> xgboost.Booster that
    trains on `client`'s workers (`rows_per_chunk`: rows per Dask array block; default: one per worker)."""

    def fit(x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray, names: list[str],
            cfg: BoosterConfig, seed: int):
        import dask.array as da
        import xgboost.dask as dxgb

        workers = max(len(client.scheduler_info()["workers"]), 1)
        chunk = rows_per_chunk or max(1, -(-len(x_tr) // workers))

        def arr(a: np.ndarray):
            return da.from_array(a, chunks=(chunk,) + a.shape[1:])

        both = len(np.unique(y_va)) == 2
        params = booster_params(y_tr, cfg, seed, early_stopping=both)
        params["n_jobs"] = 1  # one thread per worker process: the workers are the parallelism
        clf = dxgb.DaskXGBClassifier(**params)
        clf.client = client
        clf.fit(arr(x_tr), arr(y_tr), eval_set=[(arr(x_va), arr(y_va))], verbose=False)
        booster = clf.get_booster()
        if clf.best_iteration is not None and both:
            booster = booster[: clf.best_iteration + 1]
        booster.feature_names = list(names)
        return booster

    return fit
