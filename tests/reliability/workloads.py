"""One tiny, deterministic training per integration, in the framework's own words (no autolog here).

Each returns a numpy array that depends on the whole training (predictions or weights), so "the same result as
bare" can be checked. The fault-injection test runs each with autolog off, then on, then once per firewall site.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np


def _data(n: int = 120, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x @ np.arange(1, d + 1) > 0).astype("int64")
    return x, y


def sklearn() -> np.ndarray:
    from sklearn import linear_model
    from sklearn import model_selection as ms
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.preprocessing import LabelBinarizer, LabelEncoder

    x, y = _data()
    est = LogisticRegression(max_iter=50)
    labels = np.array(["a", "b"])[y]
    parts = [
        LogisticRegression(max_iter=50).fit(x, y).predict_proba(x).ravel(),
        ms.cross_val_score(est, x, y, cv=2),
        ms.cross_validate(est, x, y, cv=2)["test_score"],
        ms.cross_val_predict(est, x, y, cv=2).astype(float),
        ms.learning_curve(est, x, y, cv=2, train_sizes=[0.5, 1.0])[2].ravel(),
        ms.validation_curve(est, x, y, param_name="C", param_range=[0.1, 1.0], cv=2)[1].ravel(),
        np.atleast_1d(ms.permutation_test_score(est, x, y, cv=2, n_permutations=2, random_state=0)[0]),
        ms.GridSearchCV(est, {"C": [0.1, 1.0]}, cv=2).fit(x, y).predict_proba(x).ravel(),
        LabelEncoder().fit(labels).transform(labels).astype(float),
        LabelEncoder().fit_transform(labels).astype(float),
        LabelBinarizer().fit(labels).transform(labels).ravel().astype(float),
        LabelBinarizer().fit_transform(labels).ravel().astype(float),
    ]
    fitted = LogisticRegression(max_iter=50).fit(x, y)
    parts.append(np.atleast_1d(accuracy_score(y, fitted.predict(x))))  # a post-training metric
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        # deprecated classes define their own __new__; the integration patches them at enable, so fit them too
        for cls in ("PassiveAggressiveClassifier", "PassiveAggressiveRegressor"):
            if hasattr(linear_model, cls):
                est_cls = getattr(linear_model, cls)
                parts.append(est_cls(max_iter=5, random_state=0).fit(x, y).predict(x).astype(float))
    return np.concatenate(parts)


def xgboost() -> np.ndarray:
    import xgboost as xgb

    x, y = _data()
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1, "seed": 0}, xgb.DMatrix(x, y), 5)
    model = xgb.XGBClassifier(n_estimators=5, n_jobs=1, random_state=0).fit(x, y)
    cv = xgb.cv({"objective": "binary:logistic", "nthread": 1}, xgb.DMatrix(x, y), 3, nfold=2, seed=0)
    return np.concatenate([booster.predict(xgb.DMatrix(x)), model.predict_proba(x)[:, 1], cv.to_numpy().ravel()])


def lightgbm() -> np.ndarray:
    import lightgbm as lgb

    x, y = _data()
    params = {"objective": "binary", "num_threads": 1, "deterministic": True, "verbose": -1, "seed": 0}
    booster = lgb.train(params, lgb.Dataset(x, y), 5)
    model = lgb.LGBMClassifier(n_estimators=5, n_jobs=1, random_state=0, verbose=-1).fit(x, y)
    cv = lgb.cv(params, lgb.Dataset(x, y), 3, nfold=2, stratified=False, seed=0)
    return np.concatenate([booster.predict(x), model.predict_proba(x)[:, 1], *map(np.asarray, cv.values())])


def torch() -> np.ndarray:
    import torch as t

    t.manual_seed(0)
    x, y = _data()
    xs, ys = t.from_numpy(x), t.from_numpy(y).float()
    model = t.nn.Linear(4, 1)
    opt = t.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(20):
        opt.zero_grad()
        loss = t.nn.functional.binary_cross_entropy_with_logits(model(xs).squeeze(1), ys)
        loss.backward()
        opt.step()
    return t.cat([p.detach().flatten() for p in model.parameters()]).numpy()


def lightning() -> np.ndarray:
    import lightning.pytorch as pl
    import torch as t

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = t.nn.Linear(4, 1)

        def training_step(self, batch: tuple[t.Tensor, t.Tensor], _: int) -> t.Tensor:
            xb, yb = batch
            loss = t.nn.functional.binary_cross_entropy_with_logits(self.layer(xb).squeeze(1), yb)
            self.log("loss", loss)
            return loss

        def validation_step(self, batch: tuple[t.Tensor, t.Tensor], _: int) -> None:
            xb, yb = batch
            self.log("val_loss", t.nn.functional.binary_cross_entropy_with_logits(self.layer(xb).squeeze(1), yb))

        def test_step(self, batch: tuple[t.Tensor, t.Tensor], _: int) -> None:
            xb, yb = batch
            self.log("test_loss", t.nn.functional.binary_cross_entropy_with_logits(self.layer(xb).squeeze(1), yb))

        def configure_optimizers(self) -> t.optim.Optimizer:
            return t.optim.SGD(self.parameters(), lr=0.1)

    pl.seed_everything(0, verbose=False)
    x, y = _data()
    data = t.utils.data.DataLoader(t.utils.data.TensorDataset(t.from_numpy(x), t.from_numpy(y).float()), 40)
    model = Tiny()
    trainer = pl.Trainer(
        max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(model, data)
    scores = [
        trainer.validate(model, data, verbose=False)[0]["val_loss"],
        trainer.test(model, data, verbose=False)[0]["test_loss"],
    ]
    weights = t.cat([p.detach().flatten() for p in model.parameters()]).numpy()
    return np.concatenate([weights, np.asarray(scores, dtype="float32")])


def keras() -> np.ndarray:
    import keras as k

    k.utils.set_random_seed(0)
    x, y = _data()
    model = k.Sequential([k.Input((4,)), k.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    model.fit(x, y, epochs=2, batch_size=40, verbose=0)
    loss = model.evaluate(x, y, batch_size=40, verbose=0)
    return np.concatenate([np.asarray(model.predict(x, verbose=0)).ravel(), np.atleast_1d(loss)])


def toy() -> np.ndarray:
    import toy_framework

    model = toy_framework.ToyModel()
    weight = model.fit([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], epochs=5, callbacks=[])
    return np.array([weight])


WORKLOADS: dict[str, Callable[[], np.ndarray]] = {
    "sklearn": sklearn,
    "xgboost": xgboost,
    "lightgbm": lightgbm,
    "torch": torch,
    "lightning": lightning,
    "keras": keras,
    "toy": toy,
}
