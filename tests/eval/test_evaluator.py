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
