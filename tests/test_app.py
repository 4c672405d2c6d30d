"""The Streamlit app, run by Streamlit's AppTest against the real corpus index."""

from __future__ import annotations

import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from rag.compose import NOT_FOUND
from tests.conftest import CORPUS, ROOT

APP = str(ROOT / "app.py")
TIMEOUT = 120  # the first run in a process loads the embedder and the index


@pytest.fixture
def app(corpus_index, tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("SEISAKU_QA_INDEX", str(corpus_index))
    monkeypatch.setenv("SEISAKU_QA_CORPUS", str(CORPUS))
    monkeypatch.setenv("SEISAKU_QA_FEEDBACK", str(tmp_path / "feedback.jsonl"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def last_answer(at: AppTest):
    return at.session_state["turns"][-1]["answer"]


def texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])


def test_asking_shows_a_cited_answer_with_sources_and_latency(app):
    ask(app, "AISIはいつ設立されましたか？")
    answer = last_answer(app)
    assert not answer.abstained and "2024年2月" in answer.text
    shown = texts(app)
    assert "2024年2月" in shown and "\\[1\\]" in shown  # the answer with its marker, escaped as literal text
    cite = answer.citations[0]
    assert cite.doc in shown.replace("\\", "") and "出典" in shown
    assert ":orange-background[" in shown  # the evidence span is highlighted inside the source card
    assert any("検索" in c.value and "ms" in c.value for c in app.caption)
    assert [m.name for m in app.chat_message] == ["user", "assistant"]


def test_follow_up_uses_the_previous_turn(app):
    ask(app, "AISIとは何ですか")
    ask(app, "それはいつ設立された？")
    follow = last_answer(app)
    assert "aisi" in follow.query.lower()
    assert "2024年2月" in follow.text
    assert any("前の質問を踏まえて検索" in c.value for c in app.caption)
    assert len(app.chat_message) == 4


def test_new_conversation_clears_history(app):
    ask(app, "AISIとは何ですか")
    next(b for b in app.button if b.label == "新しい会話").click().run()
    assert app.session_state["turns"] == [] and not app.chat_message


def test_document_filter_restricts_the_sources(app):
    only = "003_85d7ebae2a956e44.txt"
    app.multiselect[0].select(only).run()
    ask(app, "AIの利活用におけるリスクとは何ですか")
    answer = last_answer(app)
    sources = answer.related if answer.abstained else answer.citations
    assert sources and {c.doc for c in sources} == {only}
    assert {c.doc for c in answer.passages} == {only}


def test_passage_count_setting_reaches_the_retriever(app):
    app.slider[0].set_value(2).run()
    ask(app, "AIの利活用におけるリスクとは何ですか")
    assert len(last_answer(app).passages) == 2


def test_unanswerable_question_abstains_with_related_passages(app):
    ask(app, "ドラゴンの卵の孵化温度は何度ですか？")
    answer = last_answer(app)
    assert answer.abstained and answer.related
    assert any(NOT_FOUND.rstrip("。") in w.value for w in app.warning)
    assert any("回答の根拠ではありません" in c.value for c in app.caption)


def test_invalid_question_gets_a_message_not_a_traceback(app):
    ask(app, "？？？")
    assert app.session_state["turns"][-1]["error"]
    assert any("文字" in w.value for w in app.warning)
    ask(app, "AI" * 50_000)
    assert any("2,000" in w.value for w in app.warning)


def test_feedback_is_appended_with_question_answer_and_citations(app, tmp_path):
    ask(app, "AISIはいつ設立されましたか？")
    app.text_input[0].input("日付が分かりやすい").run()
    next(b for b in app.button if b.label == "👍").click().run()
    assert not app.exception
    ask(app, "ドラゴンの卵の孵化温度は何度ですか？")
    next(b for b in app.button if b.label == "👎").click().run()
    lines = (tmp_path / "feedback.jsonl").read_text(encoding="utf-8").splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["rating"] == "up" and first["comment"] == "日付が分かりやすい"
    assert first["question"] == "AISIはいつ設立されましたか？" and "2024年2月" in first["answer"]
    assert first["citations"] and " ".join(first["citations"][0]["evidence"].split()) in first["answer"]
    assert second["rating"] == "down" and second["abstained"] and second["citations"]  # the related passages
    assert first["answer_id"] != second["answer_id"]
    assert any("フィードバックを記録しました" in c.value for c in app.caption)


def test_missing_index_is_built_with_progress_then_served(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS / "003_85d7ebae2a956e44.txt", corpus)
    monkeypatch.setenv("SEISAKU_QA_CORPUS", str(corpus))
    monkeypatch.setenv("SEISAKU_QA_INDEX", str(tmp_path / "index"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert (tmp_path / "index" / "CURRENT").is_file()
    assert any("索引を作成しました" in s.label for s in at.status)
    assert any("資料: 1 件" in m.value.replace("\\", "") for m in at.sidebar.markdown)


def test_damaged_index_shows_the_fix_instead_of_crashing(tmp_path, monkeypatch):
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "CURRENT").write_text("no-such-version")
    monkeypatch.setenv("SEISAKU_QA_INDEX", str(tmp_path / "index"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("rag ingest --rebuild" in e.value.replace("\\", "") for e in at.error)
    assert any(b.label == "索引を作り直す" for b in at.button)


def test_llm_mode_streams_marks_invented_facts_and_falls_back(corpus_index, tmp_path, monkeypatch):
    from tests.rag.openai_server import ScriptedOpenAIServer

    with ScriptedOpenAIServer() as server:
        monkeypatch.setenv("SEISAKU_QA_INDEX", str(corpus_index))
        monkeypatch.setenv("SEISAKU_QA_FEEDBACK", str(tmp_path / "feedback.jsonl"))
        monkeypatch.setenv("SEISAKU_QA_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("SEISAKU_QA_LLM_MODEL", "scripted")
        at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
        assert at.radio[0].options == [
            "抽出型（オフライン、LLM なし）",
            "LLM（OpenAI 互換サーバー）",
        ]
        at.radio[0].set_value("openai").run()
        server.replies = [{"content": "AISIは2024年2月に設立された。[1] 職員は300人である。[1]"}]
        ask(at, "AISIはいつ設立されましたか？")
        answer = last_answer(at)
        assert answer.generator.startswith("openai:")
        assert [c.sentence for c in answer.unsupported] == ["職員は300人である。"]
        assert any("出典で確認できない文" in w.value and "300" in w.value for w in at.warning)
        server.replies = [{"status": 500}]
        ask(at, "AISIはいつ設立されましたか？")
        assert last_answer(at).generator == "extractive"
        assert any("HTTP 500" in i.value for i in at.info)
        assert not at.exception


def test_reindex_button_picks_up_a_new_document(corpus_index, tmp_path, monkeypatch):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(CORPUS, corpus)
    shutil.copytree(corpus_index, index)
    monkeypatch.setenv("SEISAKU_QA_CORPUS", str(corpus))
    monkeypatch.setenv("SEISAKU_QA_INDEX", str(index))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    new_doc = "# 新しい通知\n\n量子計算の研究開発拠点を2030年までに整備する。"
    (corpus / "010_new.txt").write_text(new_doc, encoding="utf-8")
    next(b for b in at.button if b.label == "索引を更新").click().run()
    assert not at.exception
    assert any("010_new.txt" in s.value.replace("\\", "") for s in at.success)
    assert any("資料: 6 件" in m.value.replace("\\", "") for m in at.sidebar.markdown)
    ask(at, "量子計算の研究開発拠点はいつまでに整備する？")
    assert "2030年" in last_answer(at).text


def test_the_app_answers_from_the_database_store_and_shows_a_queued_batch(pg_database, corpus_index, monkeypatch):
    """SEISAKU_QA_STORE=postgresql://… : answers come from the database; a batch being embedded shows its progress."""
    from rag.store.pg_queue import JobQueue
    from rag.store.postgres import PostgresStore
    from tests.conftest import pg_corpus_store

    url = pg_corpus_store(pg_database, corpus_index)
    monkeypatch.setenv("SEISAKU_QA_STORE", url)
    monkeypatch.setenv("SEISAKU_QA_CORPUS", str(CORPUS))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    ask(at, "AISIはいつ設立されましたか？")
    assert "2024年2月" in last_answer(at).text
    assert not at.get("progress")
    JobQueue(PostgresStore(url)).enqueue([(p.name, p.read_bytes()) for p in sorted(CORPUS.iterdir())])
    at.run()
    assert not at.exception, at.exception
    bars = at.get("progress")
    assert bars and "取り込み待ちの資料: 0 / 5 件" in bars[0].proto.text
