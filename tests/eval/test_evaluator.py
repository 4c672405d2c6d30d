"""`rag eval` end to end on a subset of the eval set, against the real index."""

import json
from pathlib import Path

from rag.cli import main


def test_eval_cli_writes_results_and_report(corpus_index, tmp_path: Path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "eval",
            "--questions",
            "eval/questions.jsonl",
            "--out",
            str(out),
            "--limit",
            "12",
            "--index",
            str(corpus_index),
        ]
    )
    assert code == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 12
    row = rows[0]
    assert {"id", "question", "answer", "abstained", "citations", "retrieved", "timings_ms"} <= set(row)
    assert len(row["retrieved"]) >= 10 and {"doc", "text", "score"} <= set(row["retrieved"][0])
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))["seisaku_qa"]
    assert 0 <= report["overall"]["recall_at_k"] <= 1 and report["by_type"]
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "recall@k" in md and "![recall_at_k.png]" in md and (out / "recall_at_k.png").stat().st_size > 1000


def test_bad_questions_file_exits_with_a_clear_error(tmp_path: Path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n", encoding="utf-8")
    assert main(["eval", "--questions", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err


def test_eval_with_an_llm_generator_counts_unsupported_sentences(corpus_index, tmp_path: Path, capsys, monkeypatch):
    from tests.rag.openai_server import ScriptedOpenAIServer

    secret = "sk-never-in-reports-42"
    monkeypatch.setenv("SEISAKU_QA_LLM_API_KEY", secret)
    out = tmp_path / "run"
    with ScriptedOpenAIServer() as server:
        server.replies = [
            {"content": "2024年2月に設立された。[1]"},
            {"content": "1999年に設立された。[1]"},  # a date in no passage
            {"status": 503},
        ]
        args = ["eval", "--questions", "eval/questions.jsonl", "--out", str(out), "--limit", "3"]
        args += ["--index", str(corpus_index), "--generator", "openai", "--llm-model", "scripted"]
        args += ["--llm-base-url", server.base_url, "--llm-timeout", "5"]
        assert main(args) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["generator"].split(":")[0] for r in rows] == ["openai", "openai", "extractive"]
    assert "HTTP 503" in rows[2]["notice"]
    overall = json.loads((out / "report.json").read_text(encoding="utf-8"))["seisaku_qa"]["overall"]
    assert overall["unsupported_sentences"] >= 1 and overall["llm_fallbacks"] == 1
    assert overall["groundedness"] < 1
    written = "".join(p.read_text(encoding="utf-8") for p in out.iterdir() if p.suffix in {".json", ".jsonl", ".md"})
    assert secret not in written and secret not in capsys.readouterr().out


def test_ask_cli_streams_the_llm_answer_and_marks_unsupported_sentences(corpus_index, capsys):
    from tests.rag.openai_server import ScriptedOpenAIServer

    with ScriptedOpenAIServer() as server:
        server.replies = [{"content": "AISIは2024年2月に設立された。[1] 職員は300人である。[1]"}]
        code = main(
            ["ask", "AISIはいつ設立されましたか？", "--index", str(corpus_index), "--generator", "openai"]
            + ["--llm-model", "scripted", "--llm-base-url", server.base_url]
        )
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("AISIは2024年2月に設立された。[1]") == 1  # streamed once, not printed again
    assert "⚠ 根拠を確認できない文: 職員は300人である。" in out and "出典:" in out
