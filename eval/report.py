"""Write results.jsonl, report.json and report.md (with PNG plots) for an eval run."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HEADLINE = [
    ("recall_at_k", "recall@k"),
    ("mrr_at_10", "MRR@10"),
    ("keyword_accuracy", "keyword accuracy"),
    ("cited_support", "cited support"),
    ("groundedness", "groundedness"),
    ("unsupported_sentences", "unsupported answer sentences"),
    ("llm_fallbacks", "LLM failures answered extractively"),
    ("abstain_recall", "abstention recall (unanswerable)"),
    ("abstain_precision", "abstention precision"),
    ("false_abstain_rate", "false abstention rate"),
    ("retrieve_ms_p50", "retrieve p50 ms"),
    ("retrieve_ms_p95", "retrieve p95 ms"),
    ("ask_ms_p50", "ask p50 ms"),
    ("ask_ms_p95", "ask p95 ms"),
]
BY_TYPE = ["recall_at_k", "mrr_at_10", "keyword_accuracy", "cited_support", "abstain_recall", "false_abstain_rate"]


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{value:.1f}" if isinstance(value, float) and value > 1.5 else f"{value:.3f}"


def write_results(rows: list[dict], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _plots(report: dict, baseline: dict | None, out: Path) -> list[str]:
    names = []
    curve = report["overall"]["recall_curve"]
    if curve:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(range(1, 11), curve, marker="o", label="seisaku-qa")
        if baseline and baseline["overall"]["recall_curve"]:
            ax.plot(range(1, 11), baseline["overall"]["recall_curve"], marker="s", label="llama-index defaults")
        ax.set(xlabel="k", ylabel="recall@k", ylim=(0, 1.02), title="Recall by cut-off")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "recall_at_k.png", dpi=110)
        plt.close(fig)
        names.append("recall_at_k.png")
    types = list(report["by_type"])
    fig, ax = plt.subplots(figsize=(7, 3.4))
    width = 0.25
    for i, key in enumerate(["recall_at_k", "mrr_at_10", "keyword_accuracy"]):
        values = [report["by_type"][t].get(key) or 0 for t in types]
        ax.bar([x + i * width for x in range(len(types))], values, width, label=key)
    ax.set_xticks([x + width for x in range(len(types))], types, rotation=20, fontsize=8)
    ax.set(ylim=(0, 1.05), title="By question type")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "by_type.png", dpi=110)
    plt.close(fig)
    names.append("by_type.png")
    return names


def write_report(report: dict, out: Path, baseline: dict | None = None, questions_file: str = "") -> None:
    out.mkdir(parents=True, exist_ok=True)
    payload = {"questions_file": questions_file, "seisaku_qa": report}
    if baseline:
        payload["baseline_llamaindex"] = baseline
    (out / "report.json").write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    plots = _plots(report, baseline, out)
    o = report["overall"]
    lines = [f"# Grounding report: {questions_file}", "", f"{o['questions']} questions, k = {report['k']}.", ""]
    if baseline:
        b = baseline["overall"]
        lines += ["| metric | seisaku-qa | llama-index defaults |", "|---|---|---|"]
        lines += [f"| {label} | {_fmt(o.get(key))} | {_fmt(b.get(key))} |" for key, label in HEADLINE]
        if b.get("retrieve_ms_p50"):
            lines.append(
                f"| retrieve p50 ratio (ours / baseline) | {o['retrieve_ms_p50'] / b['retrieve_ms_p50']:.2f} | |"
            )
    else:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {label} | {_fmt(o.get(key))} |" for key, label in HEADLINE]
    lines += ["", "## By question type", "", "| type | n | " + " | ".join(BY_TYPE) + " |"]
    lines.append("|---|---|" + "---|" * len(BY_TYPE))
    for qtype, r in report["by_type"].items():
        lines.append(f"| {qtype} | {r['questions']} | " + " | ".join(_fmt(r.get(k)) for k in BY_TYPE) + " |")
    lines += [""] + [f"![{name}]({name})" for name in plots]
    lines += ["", f"## Failures ({len(report['failures'])})", ""]
    for f in report["failures"]:
        lines.append(f"### {f['id']} ({f['type']}): {f['question']}")
        lines.append(f"- problems: {', '.join(f['problems'])}")
        lines.append(f"- expected: {', '.join(f['expected_docs']) or '(unanswerable)'} — {f['expected_evidence']}")
        lines.append(f"- answer: {f['answer'][:200]}")
        for r in f["retrieved"]:
            lines.append(f"  - retrieved {r['doc']} ({r['score']}): {r['text'][:120]}")
        lines.append("")
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
