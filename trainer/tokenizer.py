"""A character-level tokenizer made offline: one token per character, four special tokens.

Built with `tokenizers` and wrapped as a `PreTrainedTokenizerFast`, so `save_pretrained` writes the
usual files and `AutoTokenizer.from_pretrained(dir)` loads it back with no download. Ids:
0 `<pad>`, 1 `<bos>`, 2 `<eos>`, 3 `<unk>`, then the alphabet's characters in code-point order.
A prompt is `<bos>` followed by its characters; a completion is characters, then `<eos>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from trainer.errors import ConfigError

__all__ = [
    "BOS",
    "EOS",
    "INVALID_CHAR",
    "PAD",
    "SPECIAL_TOKENS",
    "UNK",
    "WithoutEos",
    "build_tokenizer",
    "decode_completion",
    "decode_prompt",
    "encode_prompt",
    "load_tokenizer",
]

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)
INVALID_CHAR = "\ufffd"
"""What a special token other than a final EOS decodes to inside a completion (never a valid answer)."""


def build_tokenizer(alphabet: str) -> PreTrainedTokenizerFast:
    """A char-level tokenizer over the distinct characters of `alphabet` (order does not matter)."""
    chars = sorted(set(alphabet))
    if not chars:
        raise ConfigError("the alphabet is empty")
    bad = [c for c in chars if not c.isprintable() or c == INVALID_CHAR]
    if bad:
        raise ConfigError(f"alphabet characters must be printable: {bad!r}")
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for c in chars:
        vocab[c] = len(vocab)
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )


def load_tokenizer(directory: str | Path) -> PreTrainedTokenizerBase:
    """Load a tokenizer saved with `save_pretrained` from a local directory (never the hub)."""
    path = Path(directory)
    if not (path / "tokenizer.json").is_file():
        raise ConfigError(f"no tokenizer.json in {path}")
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tok.pad_token_id is None or tok.eos_token_id is None:
        raise ConfigError(f"the tokenizer in {path} needs a pad and an eos token")
    return tok


def encode_prompt(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """Token ids of a prompt: BOS (if the tokenizer has one) then one id per character."""
    ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
    if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids:
        raise ConfigError(f"the prompt {text!r} has characters outside the tokenizer's alphabet")
    if tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id, *ids]
    return ids


def decode_completion(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> str:
    """Text of a completion: tokens up to the first EOS; any other special token reads as U+FFFD."""
    special = set(tokenizer.all_special_ids)
    out: list[str] = []
    for tok_id, token in zip(ids, tokenizer.convert_ids_to_tokens(list(ids)), strict=True):
        if tok_id == tokenizer.eos_token_id:
            break
        if tok_id in special or token is None:
            out.append(INVALID_CHAR)
        else:
            out.append(tokenizer.convert_tokens_to_string([token]))
    return "".join(out)


def decode_prompt(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> str:
    """Text of prompt ids made by `encode_prompt` (the leading BOS dropped)."""
    body = list(ids)
    if body and tokenizer.bos_token_id is not None and body[0] == tokenizer.bos_token_id:
        body = body[1:]
    return decode_completion(tokenizer, body)


class WithoutEos:
    """`tokenizer` with an EOS id no model can emit, so that `trainer.rollout.generate` runs every
    completion to `max_new_tokens` (fixed-length completions for benchmarks and calibration)."""

    eos_token_id = -1

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = tokenizer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)

    def __len__(self) -> int:
        return len(self._tokenizer)
