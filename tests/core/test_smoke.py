import autolog


def test_manual_run_round_trip(memory_store):
    with autolog.start_run("manual") as run:
        autolog.log_params({"lr": 0.1})
        for step in range(3):
            autolog.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
    got = autolog.get_run(run.id)
    assert got.status == "FINISHED"
    assert got.params == {"lr": "0.1"}
    assert [v for _, v, _ in autolog.get_metric_history(run.id, "loss")] == [1.0, 0.5, 1.0 / 3]


def test_async_sqlite_round_trip(sqlite_store):
    with autolog.start_run("a") as run:
        autolog.log_metrics({"x": 1}, step=0)
    assert autolog.flush(10)
    assert autolog.get_run(run.id).metrics == {"x": 1.0}
