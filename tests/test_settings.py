"""Settings: defaults, RAG_* environment overrides, explicit overrides."""
from pathlib import Path

from rag.settings import Settings


def test_env_overrides_are_typed(monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", "9")
    monkeypatch.setenv("RAG_DENSE_WEIGHT", "0.25")
    monkeypatch.setenv("RAG_INDEX_ROOT", "/tmp/somewhere")
    s = Settings.from_env()
    assert s.top_k == 9 and s.dense_weight == 0.25 and s.index_root == Path("/tmp/somewhere")
    assert s.index_dir == Path("/tmp/somewhere/default")


def test_explicit_override_wins_over_environment(monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", "9")
    assert Settings.from_env(top_k=3).top_k == 3
    assert Settings.from_env(top_k=None).top_k == 9
