"""The demonstration: real models trained with autologging on, into the embedded default store.

    python examples/demo.py        # then: autolog runs / autolog show <id> / autolog metrics <id> <key> --plot x.png

Every framework below is optional: one that is not installed is skipped with a note.
"""

from __future__ import annotations

import importlib.util
import time

import autolog

autolog.enable()  # sqlite:///autolog-runs/runs.db; before the framework imports, as in a real script


def have(module: str) -> bool:
    if importlib.util.find_spec(module) is None:
        print(f"  ({module} is not installed: skipped)")
        return False
    return True


def sklearn_models() -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X_train, y_train)
    from sklearn.metrics import accuracy_score

    print(f"  pipeline test accuracy {accuracy_score(y_test, pipe.predict(X_test)):.3f}")
    search = GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0, 10.0]}, cv=3).fit(X_train, y_train)
    print(f"  grid search best C {search.best_params_['logisticregression__C']}: a parent run and 3 child runs")


def boosted_trees() -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    X, y = load_diabetes(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=0)
    if have("xgboost"):
        import xgboost as xgb

        dtrain, dval = xgb.DMatrix(X_train, y_train), xgb.DMatrix(X_val, y_val)
        xgb.train(
            {"max_depth": 3, "eta": 0.1}, dtrain, 50, evals=[(dtrain, "train"), (dval, "val")], verbose_eval=False
        )
    if have("lightgbm"):
        import lightgbm as lgb

        train, val = lgb.Dataset(X_train, y_train), lgb.Dataset(X_val, y_val)
        lgb.train(
            {"learning_rate": 0.1, "verbose": -1}, train, 50, valid_sets=[train, val], valid_names=["train", "val"]
        )


def torch_loop() -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    X = torch.randn(2048, 16)
    y = (X[:, :4].sum(dim=1) > 0).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=64, shuffle=True)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    for _epoch in range(3):  # a plain loop: no callback, no logger, nothing to change
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
    autolog.end_run()  # optional: otherwise the run ends with the script


def main() -> None:
    t0 = time.perf_counter()
    print("scikit-learn: a pipeline and a grid search")
    if have("sklearn"):
        sklearn_models()
        print("gradient boosting: xgboost.train and lightgbm.train, two eval sets each")
        boosted_trees()
    print("PyTorch: a hand-written training loop")
    if have("torch"):
        torch_loop()
    autolog.flush(30)
    print(f"\ntrained and logged in {time.perf_counter() - t0:.1f}s; the runs in ./autolog-runs/runs.db:\n")
    from autolog.cli import runs_table

    print(runs_table(autolog.search_runs()[:12]))
    print("\nnext: autolog show <id>   |   autolog metrics <id> <key> --plot curve.png   |   autolog compare <id> <id>")
    print("      autolog artifacts <id> model --to ./models   (the model of a run, on disk)")


if __name__ == "__main__":
    main()
