"""A test-only "framework": a model whose ``fit`` calls its callbacks once per epoch (no autolog import here)."""

from __future__ import annotations

from typing import Any


class ToyModel:
    def __init__(self) -> None:
        self.weight = 0.0

    def fit(self, xs: list[float], ys: list[float], epochs: int = 5, callbacks: list[Any] | None = None) -> float:
        for epoch in range(epochs):
            grad = sum((self.weight * x - y) * x for x, y in zip(xs, ys, strict=True)) / len(xs)
            self.weight -= 0.1 * grad
            for cb in callbacks or ():
                cb.on_epoch_end(epoch, {"loss": grad * grad})
        return self.weight
