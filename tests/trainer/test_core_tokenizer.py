"""The offline char-level tokenizer: ids, round trip through save_pretrained / AutoTokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from trainer.errors import ConfigError
from trainer.tokenizer import (
    INVALID_CHAR,
    build_tokenizer,
    decode_completion,
    decode_prompt,
    encode_prompt,
    load_tokenizer,
)


def test_ids_are_specials_then_sorted_characters() -> None:
    tok = build_tokenizer("ba+")
    assert [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2, 3]
    assert tok.convert_tokens_to_ids(["+", "a", "b"]) == [4, 5, 6]
    assert len(tok) == 7
    assert tok.padding_side == "left"


def test_prompt_round_trip_and_bos() -> None:
    tok = build_tokenizer("0123456789+= ")
    ids = encode_prompt(tok, "12 + 3=")
    assert ids[0] == tok.bos_token_id
    assert len(ids) == 8
    assert decode_prompt(tok, ids) == "12 + 3="


def test_completion_stops_at_eos_and_marks_specials() -> None:
    tok = build_tokenizer("0123456789")
    one, two = tok("12", add_special_tokens=False)["input_ids"]
    assert decode_completion(tok, [one, two, tok.eos_token_id, one]) == "12"
    assert decode_completion(tok, [one, tok.pad_token_id, two]) == f"1{INVALID_CHAR}2"
    assert decode_completion(tok, [one, two]) == "12"


def test_save_and_load_with_auto_tokenizer(tmp_path: Path) -> None:
    tok = build_tokenizer("abc>")
    tok.save_pretrained(str(tmp_path))
    for loaded in (
        load_tokenizer(tmp_path),
        AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True),
    ):
        assert encode_prompt(loaded, "cab>") == encode_prompt(tok, "cab>")
        assert loaded.eos_token_id == tok.eos_token_id
        assert loaded.pad_token_id == tok.pad_token_id
        assert loaded.padding_side == "left"


def test_unknown_characters_and_bad_alphabets_are_refused(tmp_path: Path) -> None:
    tok = build_tokenizer("01")
    with pytest.raises(ConfigError, match="outside"):
        encode_prompt(tok, "012")
    with pytest.raises(ConfigError):
        build_tokenizer("")
    with pytest.raises(ConfigError):
        build_tokenizer("a\n")
    with pytest.raises(ConfigError):
        load_tokenizer(tmp_path)
