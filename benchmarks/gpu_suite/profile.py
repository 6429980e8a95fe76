"""The suite's workloads (GPU and --cpu-smoke), the context every step's process reads, and `prepare`, which renders
the GSM8K prompts through the real tokenizer and writes that context."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.gpu_suite.record import Model
from harness.config.cards import ModelCard, load_card
from harness.engines.base import TokenizerMethods
from harness.records.store import atomic_write_text

REPO = Path(__file__).resolve().parents[2]
STAGED = REPO / ".gpu_suite"  # what `gpu_suite.sh --prepare` gathers for a machine without ../shared
SHARED_DATA = REPO.parent / "shared" / "data"
REAL_TOKENIZER = "tokenizers/deepseek-r1-distill-qwen-7b"  # the Qwen2 vocabulary (152,064) and R1's chat template
SMOKE_SHAPE = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 2,
               "num_key_value_heads": 1}  # --cpu-smoke: the cards' shapes cut down, vocabulary and tying kept


@dataclass(frozen=True)
class Profile:
    """The workload of one mode."""

    mode: str
    models: tuple[tuple[str, str], ...]  # (label, card id)
    prompts: int
    output_len: int
    batch: int  # transformers batch (requests in flight for continuous batching)
    batch1_tokens: int
    repeats: int  # timed runs per vLLM path, interleaved (the hf paths run once: each is a long run)
    budget_s: float
    vllm_args: tuple[tuple[str, Any], ...] = ()  # engine arguments added to every vLLM engine


MODELS = (("1.5b", "qwen2.5-1.5b-instruct"), ("7b", "qwen2.5-7b-instruct"))
# The lent GPU is ~15 minutes in all: machine start and vLLM's staging take ~4, the suite ~7 (what is not reached
# is recorded as such; rerun it with --steps on the same warm machine).
GPU = Profile("gpu", MODELS, prompts=256, output_len=256, batch=64, batch1_tokens=256, repeats=3, budget_s=420)
# On a CPU: vLLM in eager mode with its engine and worker in the steps' process (no interpreters spawned to import),
# each engine's KV cache a fixed 256 MiB (sized from the process's memory, it shrinks with every engine before it).
SMOKE = Profile("cpu-smoke", MODELS, prompts=8, output_len=8, batch=4, batch1_tokens=8, repeats=2, budget_s=540,
                vllm_args=(("enforce_eager", True), ("distributed_executor_backend", "uni"),
                           ("kv_cache_memory_bytes", 256 << 20)))
SMOKE_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


class Ctx(Model):
    """Everything a step's process needs, written by the suite as JSON into the work directory."""

    mode: str
    models: dict[str, str]  # label -> card id or card YAML path
    run_model: str  # the label that `owb run` and lm-eval use
    prompts: int
    output_len: int
    batch: int
    batch1_tokens: int
    repeats: int
    vllm_args: dict[str, Any]
    device: str
    work: str
    data_source: str  # local | fixture
    data_dir: str | None
    tokenizer_dir: str
    tokenizer_name: str
    max_model_len: int
    prompt_ids: list[list[int]]
    prompt_texts: list[str]
    questions: list[str]

    @classmethod
    def load(cls, work: Path) -> Ctx:
        """The context the suite wrote into `work`."""
        return cls.model_validate_json((work / "ctx.json").read_text())

    def card(self, label: str) -> ModelCard:
        """The card of a model label."""
        return load_card(self.models[label])


class Renderer(TokenizerMethods):
    """owb's chat rendering (the card's settings, the tokenizer's template) over a tokenizer that no backend owns."""

    def __init__(self, card: ModelCard, tokenizer: Any) -> None:
        self.card = card
        self.tokenizer = tokenizer


def smoke_card(card_id: str, work: Path) -> str:
    """A card YAML of the card's shape cut down to SMOKE_SHAPE (vocabulary kept), float32, for --cpu-smoke."""
    card = load_card(card_id)
    assert card.shape is not None
    small = card.model_copy(update={"id": f"{card.id}-smoke", "dtype": "float32",
                                    "shape": {**card.shape, **SMOKE_SHAPE}})
    path = work / f"{small.id}.yaml"
    path.write_text(yaml.safe_dump(small.model_dump(mode="json", exclude_defaults=True)))
    return str(path)


def registered_tokenizer(src: Path, dst: Path) -> Path:
    """The GGUF-converted tokenizer with DeepSeek's markers (`<｜User｜>`, BOS, EOS...) as special tokens at their
    vocabulary ids (151643-151646), as published, and the BOS/EOS it appended past the vocabulary dropped."""
    # Its vocabulary holds the markers only in byte-level form, so the chat template's markers were encoded as text
    # pieces, and BOS/EOS were appended at 152065/152066, outside every model's vocabulary.
    from tokenizers.decoders import ByteLevel

    data = json.loads((src / "tokenizer.json").read_text())
    vocab: dict[str, int] = data["model"]["vocab"]
    decode = ByteLevel()
    pieces = {piece: decode.decode([piece]) for piece in vocab if piece.startswith("<")}
    markers = {piece: text for piece, text in pieces.items() if text.startswith("<｜") and text.endswith("｜>")}
    for piece, text in markers.items():
        vocab[text] = vocab.pop(piece)
    added = [t for t in data["added_tokens"] if t["id"] < len(vocab) and t["content"] not in markers.values()]
    added += [{"id": vocab[text], "content": text, "single_word": False, "lstrip": False, "rstrip": False,
               "normalized": False, "special": True} for text in markers.values()]
    data["added_tokens"] = sorted(added, key=lambda t: t["id"])
    dst.mkdir(parents=True, exist_ok=True)
    for file in src.iterdir():
        if file.is_file() and file.name != "tokenizer.json":
            shutil.copy(file, dst / file.name)
    (dst / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False))
    return dst


def first_existing(*paths: Path) -> Path | None:
    """The first of the paths that exists."""
    return next((p for p in paths if p.exists()), None)


def find_tokenizer(smoke: bool, work: Path) -> tuple[Path, str]:
    """The real tokenizer (registered into `work`) and its description; tiny-qwen2's for a smoke without it."""
    from harness.engines.weights import resolve_model_path

    found = first_existing(STAGED / "tokenizer", SHARED_DATA / REAL_TOKENIZER)
    if found is not None:
        return (registered_tokenizer(found, work / "tokenizer"),
                "the DeepSeek-R1-Distill-Qwen-7B tokenizer (Qwen2 vocabulary) and chat template")
    if smoke:  # CI without ../shared
        return (Path(resolve_model_path(load_card("tiny-qwen2"))),
                "tiny-qwen2's tokenizer and ChatML template (the real tokenizer is not here)")
    raise SystemExit(f"the real tokenizer is missing: {SHARED_DATA / REAL_TOKENIZER} (or run "
                     "scripts/gpu_suite.sh --prepare and carry .gpu_suite)")


def prepare(profile: Profile, work: Path) -> Ctx:
    """Render the GSM8K prompts through the real tokenizer and write the steps' context into `work`."""
    from transformers import AutoTokenizer

    from harness.pipeline.plan import resolve_task

    smoke = profile.mode == "cpu-smoke"
    models = {label: smoke_card(card, work) if smoke else card for label, card in profile.models}
    cards = {label: load_card(path) for label, path in models.items()}
    tokenizer_dir, tokenizer_name = find_tokenizer(smoke, work)
    data_dir = None if smoke else first_existing(STAGED / "data", SHARED_DATA)
    task = resolve_task("gsm8k")
    data = task.documents("fixture" if smoke else "local", data_dir, profile.prompts)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    run_card = cards[profile.models[0][0]]
    texts = [task.prompt(doc, data, run_card, "off", Renderer(run_card, tokenizer)).text for doc in data.docs]
    ids = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
    vocab = min(int((c.shape or {})["vocab_size"]) for c in cards.values())
    if max(max(p) for p in ids) >= vocab:
        raise SystemExit(f"a prompt token id is not below the shapes' vocabulary size {vocab}")
    longest = max(len(p) for p in ids) + max(profile.output_len, profile.batch1_tokens)
    ctx = Ctx(mode=profile.mode, models=models, run_model=profile.models[0][0], prompts=len(ids),
              output_len=profile.output_len, batch=profile.batch, batch1_tokens=profile.batch1_tokens,
              repeats=profile.repeats, vllm_args=dict(profile.vllm_args), device="cpu" if smoke else "cuda",
              work=str(work), data_source="fixture" if smoke else "local",
              data_dir=str(data_dir) if data_dir else None, tokenizer_dir=str(tokenizer_dir),
              tokenizer_name=tokenizer_name,
              max_model_len=256 * math.ceil(longest / 256), prompt_ids=ids, prompt_texts=texts,
              questions=[str(d.fields["question"]) for d in data.docs])
    (work / "results").mkdir(parents=True, exist_ok=True)
    atomic_write_text(work / "ctx.json", ctx.model_dump_json(indent=2))
    return ctx


def gpu_name() -> str:
    """The GPU's name from nvidia-smi (no CUDA context in this process), or 'gpu'."""
    try:
        found = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                               text=True, timeout=30).stdout.strip().splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return "gpu"
    return found[0].strip() if found else "gpu"


def slug(text: str) -> str:
    """A directory name: lower case, runs of other characters as '-'."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")
