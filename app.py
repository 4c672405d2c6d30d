"""seisaku-qa chat app: questions in Japanese, answers with numbered, highlighted sources.

Run with `streamlit run app.py`. Everything shown from documents or users goes
through `rag.markup`, so it renders as literal text, never as HTML or links.
"""

from __future__ import annotations

import glob
import io
import uuid
from pathlib import Path
from typing import Any

import streamlit as st

from ingest.corpus import add_document, limits_text, remove_document
from ingest.load import LoadError, supported_suffixes
from ingest.pipeline import NothingToIndexError, ingest, stale_reason
from rag import config
from rag.compose import Answer, Citation
from rag.feedback import append_feedback, feedback_record
from rag.generate import LLMGenerator, TokenCallback
from rag.llm import LLMError, LLMSettings
from rag.markup import escape_markdown, highlighted_markdown
from rag.pages import page_label, render_evidence
from rag.qa import MAX_QUESTION_CHARS, PolicyQA, QueryError
from rag.store import IndexLoadError, open_store, store_location
from rag.text import default_tokenizer

ANSWER_MODES = {
    "extractive": "抽出型（オフライン、LLM なし）",
    "openai": "LLM（OpenAI 互換サーバー）",
    "llamacpp": "LLM（ローカル GGUF）",
}
EXAMPLE_QUESTION = "AI法はいつ全面施行された？"


@st.cache_resource(max_entries=2, show_spinner="検索エンジンを読み込んでいます…")
def load_qa(location: str, version: str) -> PolicyQA:
    """One PolicyQA per index version and process, shared by every session (it is thread-safe).

    `version` is only the cache key: a re-index (here, or by another server on the same
    database) makes a new version, so the next run loads it.
    """
    return PolicyQA.load(store=location)


@st.cache_resource(max_entries=4, show_spinner=False)
def load_generator(generator: str, model: str, base_url: str, model_path: str, timeout_s: float) -> LLMGenerator:
    """One LLM client per configuration and process; the API key is read from the environment here."""
    settings = LLMSettings(
        generator=generator, model=model, base_url=base_url, model_path=model_path, timeout_s=timeout_s
    )
    return LLMGenerator.from_settings(settings, default_tokenizer())


def configured_modes(settings: LLMSettings) -> list[str]:
    """Answer modes offered: extractive, plus the LLM the server's environment configures.

    Endpoints and model files come from the operator's environment, not from the page, so a
    user cannot point the server at another address.
    """
    modes = ["extractive"]
    if settings.base_url and settings.model:
        modes.append("openai")
    if settings.model_path:
        modes.append("llamacpp")
    return modes


def nothing_to_index_message(exc: NothingToIndexError) -> str:
    """Why no index could be built from the corpus folder, in the user's words."""
    folder = config.corpus_dir()
    if exc.skipped:
        reasons = "\n".join(f"- {name}: {reason}" for name, reason in sorted(exc.skipped.items()))
        return f"資料フォルダ {folder} のファイルはどれも読み込めませんでした。\n\n{reasons}"
    return (
        f"資料フォルダ {folder} に読み込める資料がありません"
        f"（対応形式: {', '.join(supported_suffixes())}）。資料を置いてから「索引を更新」を押してください。"
    )


def build_index(rebuild: bool = False) -> list[str]:
    """Ingest the corpus with a visible progress bar; returns the ingest summary lines.

    Raises NothingToIndexError when the corpus folder holds nothing that can be indexed.
    """
    with st.status("資料の索引を作成しています…", expanded=True) as status:
        bar = st.progress(0.0, text="資料を読み込んでいます…")

        def on_progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"文章を埋め込んでいます: {done} / {total} チャンク")

        try:
            summary = ingest(
                [config.corpus_dir()], store_location(), rebuild=rebuild, progress=False, on_progress=on_progress
            )
        except NothingToIndexError:
            status.update(label="索引を作成できませんでした", state="error", expanded=False)
            raise
        bar.progress(1.0, text="完了")
        status.update(label=f"索引を作成しました（{summary.seconds:.0f} 秒）", state="complete", expanded=False)
    return summary.lines()


def open_index() -> PolicyQA:
    """The shared PolicyQA; builds the index on first start, stops with the reason if it cannot load."""
    try:
        store = open_store()  # $SEISAKU_QA_STORE (a postgresql://… URL) or the index directory
        if store.current() is None:
            st.info("初回起動のため、同梱の資料から索引を作成します（1 分ほどかかります）。")
            try:
                build_index()
            except NothingToIndexError as exc:
                st.error(escape_markdown(nothing_to_index_message(exc)))
                st.stop()
        return load_qa(str(store_location()), store.current() or "")
    except IndexLoadError as exc:
        st.error(f"索引を読み込めません。\n\n{escape_markdown(str(exc))}")
        if st.button("索引を作り直す", type="primary"):
            build_index(rebuild=True)
            st.rerun()
        st.stop()


def sidebar(qa: PolicyQA) -> dict[str, Any]:
    """Search settings, the index status and the re-index button; returns the settings."""
    with st.sidebar:
        if st.button("新しい会話", icon="🗨️", width="stretch"):
            st.session_state.turns = []
        st.header("検索の設定")
        titles = qa.documents
        docs = st.multiselect(
            "対象の資料（未選択ならすべて）",
            options=sorted(titles),
            format_func=lambda name: titles[name],
            key="docs",
            placeholder="すべての資料",
        )
        k = st.slider("参照する箇所の数", min_value=1, max_value=10, value=5, key="k")
        mode, generator = answer_mode()
        st.header("索引の状態")
        manifest = qa.index.manifest
        st.markdown(
            escape_markdown(
                f"資料: {manifest.counts.get('files', 0)} 件\n"
                f"チャンク: {manifest.counts.get('chunks', 0)} 件\n"
                f"埋め込みモデル: {manifest.embedder}\n"
                f"作成日時: {manifest.created_at}"
            )
        )
        if stale := stale_reason(manifest):
            st.warning(escape_markdown(f"索引が古い設定で作られています（{stale}）。「索引を更新」を押してください。"))
        for name, reason in manifest.skipped.items():
            st.caption(escape_markdown(f"読み込めなかった資料: {name}（{reason}）"))
        queue_progress(qa)
        if st.button("索引を更新", help="corpus/ の変更を反映します（変更された資料だけを処理します）"):
            try:
                st.session_state.ingest_summary = build_index()
            except NothingToIndexError as exc:  # the previous index stays in use
                st.session_state.ingest_summary = [nothing_to_index_message(exc), "前の索引をそのまま使います。"]
            st.rerun()
        if config.upload_allowed():
            manage_documents(qa)
    return {"docs": docs or None, "k": k, "mode": mode, "index_version": qa.index.path.name, "generator": generator}


def queue_progress(qa: PolicyQA) -> None:
    """With the PostgreSQL store: the newest queued batch (`rag ingest --enqueue`) while workers embed it."""
    from rag.store.pg_queue import JobQueue
    from rag.store.postgres import PgSnapshot

    if not isinstance(qa.index, PgSnapshot):
        return
    try:
        batches = JobQueue(qa.index.store).status(limit=1)
    except IndexLoadError:  # a schema without the queue yet
        return
    if batches and batches[0].state in ("queued", "publishing"):
        batch = batches[0]
        eta = batch.eta_seconds()
        left = f"、残り約 {eta / 60:.0f} 分" if eta else ""
        st.progress(
            (batch.done + batch.failed) / max(batch.total, 1),
            text=f"取り込み待ちの資料: {batch.done + batch.failed} / {batch.total} 件{left}"
            "（公開されるまで今の索引で回答します）",
        )


def reindex_after_change(messages: list[str]) -> None:
    """Re-index after files were added or removed; the messages and the summary show after the rerun.

    Other sessions keep answering from the index version they have until the new one is written.
    """
    try:
        messages += build_index()
    except NothingToIndexError as exc:
        messages += [nothing_to_index_message(exc), "前の索引をそのまま使います。"]
    st.session_state.ingest_summary = messages


def manage_documents(qa: PolicyQA) -> None:
    """Sidebar section (SEISAKU_QA_ALLOW_UPLOAD=1): add PDF/Word/HTML/text files, remove documents."""
    st.header("資料の追加と削除")
    st.caption(
        escape_markdown(
            f"1 ファイルの上限: {limits_text()}。スキャン画像だけのPDFは文字を読み取れません（OCR は行いません）。"
            "同じ内容の資料は追加しません。"
        )
    )
    round_ = st.session_state.setdefault("upload_round", 0)  # a new key empties the uploader after a run
    files = st.file_uploader(
        "追加する資料",
        type=[suffix.lstrip(".") for suffix in supported_suffixes()],
        accept_multiple_files=True,
        key=f"upload-{round_}",
    )
    if files and st.button("追加して索引を更新", type="primary", key="upload-add"):
        messages: list[str] = []
        added = 0
        for file in files:
            try:
                result = add_document(config.corpus_dir(), file.name, file.getvalue())
            except LoadError as exc:
                messages.append(f"追加しませんでした: {file.name}（{exc}）")
                continue
            added += 1
            renamed = f"（{result.name} として保存）" if result.name != file.name else ""
            messages.append(f"{'更新しました' if result.replaced else '追加しました'}: {file.name}{renamed}")
        if added:
            reindex_after_change(messages)
        else:
            st.session_state.ingest_summary = messages
        st.session_state.upload_round = round_ + 1
        st.rerun()
    names = sorted(qa.documents)
    remove = st.multiselect("削除する資料", options=names, key=f"remove-docs-{round_}")
    if remove and st.button("選択した資料を削除して索引を更新", key="remove-apply"):
        if set(remove) >= set(names):
            st.warning("すべての資料を削除すると何も答えられなくなるため、少なくとも 1 件は残してください。")
            return
        messages = []
        for name in remove:
            try:
                remove_document(config.corpus_dir(), name)
                messages.append(f"削除しました: {name}")
            except LoadError as exc:
                messages.append(str(exc))
        st.session_state.upload_round = round_ + 1
        reindex_after_change(messages)
        st.rerun()


def answer_mode() -> tuple[str, LLMGenerator | None]:
    """The answer-mode radio; the LLM generator when one is chosen and can be built."""
    try:
        env = LLMSettings.from_env()
    except (LLMError, ValueError) as exc:
        st.error(escape_markdown(f"LLM の設定が正しくありません: {exc}"))
        env = LLMSettings()
    modes = configured_modes(env)
    mode = st.radio(
        "回答方式",
        options=modes,
        index=modes.index(env.generator) if env.generator in modes else 0,
        format_func=ANSWER_MODES.__getitem__,
        key="mode",
        help="LLM は環境変数 SEISAKU_QA_LLM_BASE_URL / SEISAKU_QA_LLM_MODEL（または SEISAKU_QA_GGUF）で設定します。",
    )
    if mode == "extractive":
        return mode, None
    try:
        generator = load_generator(mode, env.model, env.base_url, env.model_path, env.timeout_s)
    except LLMError as exc:
        st.error(escape_markdown(str(exc)))
        return "extractive", None
    st.caption(escape_markdown(f"モデル: {generator.name}。各文を出典と照合し、確認できない文には印を付けます。"))
    return mode, generator


def source_file(name: str) -> Path | None:
    """The corpus file a document name stands for (documents are named by file name)."""
    root = config.corpus_dir()
    return next((p for p in sorted(root.rglob(glob.escape(name))) if p.is_file()), None) if root.is_dir() else None


@st.cache_data(max_entries=32, show_spinner="ページを描画しています…")
def page_png(path: str, mtime: float, page: int, evidence: str) -> tuple[bytes, int]:
    """The page as PNG with the evidence marked, and how many evidence characters were found on it.

    `mtime` is only the cache key: a replaced file renders anew.
    """
    rendered = render_evidence(Path(path), page, evidence)
    buffer = io.BytesIO()
    rendered.image.save(buffer, format="PNG")
    return buffer.getvalue(), rendered.marked


def render_page_images(cite: Citation) -> None:
    """The cited PDF pages as images, the evidence marked on them."""
    path = source_file(cite.doc)
    if path is None:
        st.warning(escape_markdown(f"元のPDF（{cite.doc}）が資料フォルダに見つからないため、ページを表示できません。"))
        return
    for page in range(cite.page_start, (cite.page_end or cite.page_start) + 1):
        try:
            png, marked = page_png(str(path), path.stat().st_mtime, page, cite.evidence)
        except (OSError, ValueError) as exc:
            st.warning(escape_markdown(f"ページを表示できません: {exc}"))
            return
        note = "根拠の箇所に色を付けています" if marked else "このページでは根拠の箇所を特定できませんでした"
        st.image(png)
        st.caption(escape_markdown(f"{cite.doc} p. {page}（{note}）"))


def render_source(cite: Citation, key: str, highlight: bool = True) -> None:
    """One source card; `key` gives it the CSS class `st-key-source-…` that the browser test finds."""
    with st.container(border=True, key=f"source-{key}-{cite.n}"):
        st.markdown(f"**{escape_markdown(f'[{cite.n}] {cite.title}')}**")
        first, last = cite.lines
        pages = page_label(cite.page_start, cite.page_end)
        place = pages or (f"{first} 行" if first == last else f"{first}–{last} 行")
        where = f"{cite.doc} ・ {cite.section or '（見出しなし）'} ・ {place} ・ スコア {cite.score:.3f}"
        st.caption(escape_markdown(where))
        if highlight:
            st.markdown(highlighted_markdown(cite.text, cite.evidence_start, cite.evidence_end))
        else:
            st.markdown(escape_markdown(cite.text))
        if pages and highlight:
            shown: set[str] = st.session_state.setdefault("shown_pages", set())
            page_key = f"page-{key}-{cite.n}"
            if st.button(f"{pages} を表示", key=page_key, icon="📄", help="PDF のページを画像で表示します"):
                shown.symmetric_difference_update({page_key})
            if page_key in shown:
                render_page_images(cite)


def render_answer(answer: Answer, key: str) -> None:
    if answer.query != answer.question:
        st.caption(escape_markdown(f"前の質問を踏まえて検索: {answer.query}"))
    if answer.notice:
        st.info(escape_markdown(f"{answer.notice} 抽出型の回答を表示しています。"), icon="ℹ️")
    if answer.abstained:
        st.warning(escape_markdown(answer.text), icon="🔍")
        if answer.related:
            st.caption("近い内容の箇所（回答の根拠ではありません）")
        for cite in answer.related:
            render_source(cite, key, highlight=False)
    else:
        st.markdown(escape_markdown(answer.text))
        for check in answer.unsupported:
            st.warning(escape_markdown(f"出典で確認できない文: 「{check.sentence}」（{check.reason}）"), icon="⚠️")
        st.caption("出典")
        for cite in answer.citations:
            render_source(cite, key)
    timings = answer.timings_ms
    writer = "抽出型" if answer.generator == "extractive" else answer.generator
    st.caption(
        escape_markdown(
            f"検索 {timings.get('retrieve', 0):.0f} ms ・ 回答作成 {timings.get('answer', 0):.0f} ms ・ {writer}"
        )
    )


def render_feedback(turn: dict[str, Any]) -> None:
    """👍/👎 with an optional comment, written once per answer to the feedback log."""
    key = turn["id"]
    if turn.get("rated"):
        st.caption(f"フィードバックを記録しました（{'👍' if turn['rated'] == 'up' else '👎'}）。ありがとうございます。")
        return
    comment = st.text_input("コメント（任意）", key=f"comment-{key}", placeholder="回答についてのご意見")
    up, down, _ = st.columns([1, 1, 8])
    for column, rating, label in ((up, "up", "👍"), (down, "down", "👎")):
        if column.button(label, key=f"{rating}-{key}", help="役に立った" if rating == "up" else "役に立たなかった"):
            record = feedback_record(turn["answer"], rating, comment, answer_id=key, **turn["settings"])
            try:
                append_feedback(config.feedback_path(), record)
            except OSError as exc:
                st.error(escape_markdown(f"フィードバックを保存できませんでした: {exc}"))
                return
            turn["rated"] = rating
            st.rerun()


def render_question(question: str) -> None:
    with st.chat_message("user"):
        st.markdown(escape_markdown(question))


def render_reply(turn: dict[str, Any]) -> None:
    if turn.get("error"):
        st.warning(escape_markdown(turn["error"]))
        return
    render_answer(turn["answer"], turn["id"])
    render_feedback(turn)


def ask(qa: PolicyQA, question: str, settings: dict[str, Any], on_token: TokenCallback | None = None) -> dict[str, Any]:
    """Answer `question` in the context of this session's earlier answered turns."""
    history = [
        {"question": t["answer"].query, "answer": t["answer"].text} for t in st.session_state.turns if t.get("answer")
    ]
    logged = {key: value for key, value in settings.items() if key != "generator"}
    turn: dict[str, Any] = {"id": uuid.uuid4().hex, "question": question, "settings": logged}
    try:
        turn["answer"] = qa.ask(
            question,
            history=history,
            k=settings["k"],
            docs=settings["docs"],
            generator=settings["generator"],
            on_token=on_token,
        )
    except QueryError as exc:
        turn["error"] = str(exc)
    return turn


def main() -> None:
    st.set_page_config(page_title="政策文書 Q&A", page_icon="📑", layout="wide")
    st.session_state.setdefault("turns", [])
    qa = open_index()
    settings = sidebar(qa)
    st.title("政策文書 Q&A")
    st.caption(
        "同梱の政府資料だけを根拠に答えます。回答の各文には出典番号 [n] が付き、資料に記載がなければそう答えます。"
    )
    if summary := st.session_state.pop("ingest_summary", None):
        st.success(escape_markdown("\n".join(summary)))
    for turn in st.session_state.turns:
        render_question(turn["question"])
        with st.chat_message("assistant"):
            render_reply(turn)
    question = st.chat_input(f"資料について質問してください（例: {EXAMPLE_QUESTION}、{MAX_QUESTION_CHARS:,} 文字まで）")
    if question:
        render_question(question)
        with st.chat_message("assistant"):
            live = st.empty()
            streamed: list[str] = []

            def on_token(token: str) -> None:
                streamed.append(token)
                live.markdown(escape_markdown("".join(streamed)) + " ▌")

            with st.spinner("資料を検索しています…"):
                turn = ask(qa, question, settings, on_token)
            live.empty()
            st.session_state.turns.append(turn)
            render_reply(turn)


main()
