"""Third-party backends and integrations through real entry points, and the git commit tag."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import autolog
from autolog import integrations, session

PLUGIN = """
import autolog
from autolog.backends.memory import MemoryBackend
from autolog.integrations import Integration
from autolog.patching import registry, training_wrapper
from autolog import runs

STORE = MemoryBackend("toystore:")

def open_toystore(uri):
    STORE.uri = uri
    return STORE

class _Call:
    def __init__(self, args, kwargs):
        self.args, self.kwargs = args, kwargs
        self.run = runs.new_run("toy")
        self.run.log_params({"n": args[0]})
    def finish(self, result):
        self.run.log_metrics({"result": result}, 0)
        self.run.end()
    def fail(self, exc):
        self.run.end(runs.status_for(exc))

class ToyIntegration(Integration):
    name = "toyframework"
    modules = ("toyframework",)
    distribution = "toyframework"

    def patch(self, module_name):
        import toyframework
        registry.patch(self.name, toyframework.Model, "train",
                       training_wrapper(self.name, "toyframework:Model.train", lambda w, i, a, k: _Call(a, k)))
"""

TOY = """
class Model:
    def train(self, n):
        return n * 10
"""


@pytest.fixture
def plugin_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real installed-distribution layout (dist-info with entry_points.txt) on sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "autolog_toyplugin.py").write_text(PLUGIN)
    (site / "toyframework.py").write_text(TOY)
    info = site / "autolog_toyplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: autolog-toyplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[autolog.backends]\ntoystore = autolog_toyplugin:open_toystore\n\n"
        "[autolog.integrations]\ntoyframework = autolog_toyplugin:ToyIntegration\n"
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in ("autolog_toyplugin", "toyframework"):
        sys.modules.pop(name, None)


def test_backend_from_an_entry_point(plugin_on_path: Path) -> None:
    from autolog.backends import known_schemes

    assert "toystore" in known_schemes()
    autolog.enable(backend="toystore://anything", sync=True)
    with autolog.start_run("p") as run:
        autolog.log_metric("x", 2.0)
    store = session.backend()
    assert store.uri == "toystore://anything"
    assert store.get_run(run.id).metrics == {"x": 2.0}


def test_integration_from_an_entry_point_patches_on_import_and_reverts(plugin_on_path: Path) -> None:
    autolog.enable(backend="memory:", sync=True)
    assert "toyframework" not in sys.modules  # enable() imported nothing
    import toyframework

    original = toyframework.Model.__dict__["train"].__wrapped__  # patched at import: keep what it wraps
    assert "toyframework" in integrations.active()
    assert toyframework.Model().train(4) == 40
    (run,) = session.backend().search_runs()
    assert run.params == {"n": "4"} and run.metrics == {"result": 40.0}
    autolog.disable()
    assert toyframework.Model.__dict__["train"] is original
    assert toyframework.Model().train(1) == 10
    assert len(session.backend().search_runs()) == 1  # disabled: no new run


def test_git_commit_tag_is_the_checked_out_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "train.py").write_text(
        textwrap.dedent(
            f"""
            import autolog
            autolog.enable(backend="sqlite:///{tmp_path / "runs.db"}")
            autolog.log_metric("x", 1.0)
            print(autolog.active_run().id)
            """
        )
    )
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    out = subprocess.run(
        [sys.executable, str(repo / "train.py")], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    autolog.enable(backend=f"sqlite:///{tmp_path / 'runs.db'}")
    assert autolog.get_run(out.strip()).tags["autolog.git_commit"] == head
