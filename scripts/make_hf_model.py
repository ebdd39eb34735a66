#!/usr/bin/env python
"""Make a small Hugging Face causal LM directory offline (no download), for a task's `initial.pretrained`.

    .venv/bin/python scripts/make_hf_model.py out/hf-qwen2 --arch qwen2 --env addition --digits 2

Writes config.json, tokenizer.json, tokenizer_config.json, generation_config.json and model.safetensors
(`save_pretrained`): a byte-level BPE tokenizer (`tokenizers`) trained on the environment's problems and a
Llama or Qwen2 over its vocabulary, initialised from `--seed` and warm-started on the environment's answers
(`--warmstart-steps 0`: random weights). examples/task-pretrained.yaml trains it (docs/models.md). Prints
the directory's files and the model's size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="directory to write")
    p.add_argument("--arch", choices=("llama", "qwen2"), default="qwen2")
    p.add_argument("--env", default="addition", help="environment whose text trains the tokenizer")
    p.add_argument("--digits", type=int, default=2, help="the environment's digits parameter")
    p.add_argument("--vocab", type=int, default=320, help="BPE vocabulary size (at least 259)")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--intermediate", type=int, default=128)
    p.add_argument("--positions", type=int, default=64, help="max_position_embeddings")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmstart-steps", type=int, default=300, help="supervised steps (0: none)")
    p.add_argument("--warmstart-accuracy", type=float, default=0.3, help="stop at this eval accuracy")
    args = p.parse_args(argv)

    from trainer.config import WarmStartConfig
    from trainer.envs import get_env
    from trainer.errors import TrustrlError
    from trainer.model import model_from_config, num_parameters
    from trainer.pretrained import load_pretrained_files, make_offline_model, read_pretrained_files

    try:
        env = get_env(args.env, {"digits": args.digits})
        warm = (
            WarmStartConfig(
                lr=0.01,
                batch_size=32,
                eval_size=50,
                max_steps=args.warmstart_steps,
                target_accuracy=args.warmstart_accuracy,
            )
            if args.warmstart_steps > 0
            else None
        )
        path = make_offline_model(
            args.out,
            env,
            arch=args.arch,
            warmstart=warm,
            vocab_size=args.vocab,
            hidden_size=args.hidden,
            num_layers=args.layers,
            num_heads=args.heads,
            num_kv_heads=args.kv_heads,
            intermediate_size=args.intermediate,
            max_position_embeddings=args.positions,
            seed=args.seed,
        )
        config, tokenizer = load_pretrained_files(read_pretrained_files(path))
    except TrustrlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{path}: {', '.join(sorted(f.name for f in path.iterdir()))}")
    params = num_parameters(model_from_config(config))
    print(f"{config.model_type}, {params} parameters, vocabulary {len(tokenizer)} (byte-level BPE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
