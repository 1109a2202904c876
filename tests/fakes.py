"""Test doubles shared by several test modules (pytest puts this folder on sys.path)."""
from __future__ import annotations

import hashlib

import numpy as np


class HashEmbedder:
    """Deterministic hashing bigram embedder (model id `fake-bigram`, 64 dimensions) for tests of bookkeeping, not of
    quality; it counts its passage calls and texts so tests can prove what was (not) embedded."""

    model_id = "fake-bigram"
    dim = 64

    def __init__(self) -> None:
        self.calls = 0
        self.texts = 0

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, np.float32)
        for i in range(len(text) - 1):
            v[int(hashlib.md5(text[i : i + 2].encode()).hexdigest()[:8], 16) % self.dim] += 1.0
        return v / max(float(np.linalg.norm(v)), 1e-9)

    def encode_passages(self, texts, progress=False):
        self.calls += 1
        self.texts += len(texts)
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_queries(self, texts):
        return np.stack([self._vec(t) for t in texts])
