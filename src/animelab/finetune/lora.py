"""LoRA fine-tuning of the text encoder for genre understanding.

Objective per batch: InfoNCE of anchors (query phrasings, synopses) against their anime's genre
text, with the other genre texts of the batch and one mined confusable genre text per pair as
negatives, plus a multi-label supervised contrastive loss over the anchors (anchors whose anime
share enough genre/theme/demographic labels pull together). Early stopping on dev NDCG@10 of
dev queries against dev anime. The adapter (peft) is all that is trained and saved.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from ranx import Qrels, Run, evaluate
from tqdm import tqdm

from animelab.encoders.text import FlagTextEncoder, bf16_autocast, inference_precision
from animelab.finetune.pairs import Batch, LeakageGuard, Pair
from animelab.params import FinetuneParams, LoraParams

MONITOR_BATCHES = 8
ADAPTER_CONFIG = "adapter_config.json"
MODEL_CARD = "README.md"


class AdapterModel:
    """The base encoder's transformer with LoRA adapters, embedding with the base model's pooling."""

    def __init__(self, encoder: FlagTextEncoder, lora: LoraParams, seed: int):
        torch.manual_seed(seed)
        config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                            target_modules=list(lora.target_modules), bias="none")
        self.model = get_peft_model(encoder.transformer, config)
        self.tokenizer = encoder.tokenizer
        self.pooling = encoder.POOLING
        self.text_params = encoder.params
        self.query_instruction = encoder.params.query_instruction
        self.base_model_name = encoder.MODEL_NAME

    def embed(self, texts: list[str], max_length: int) -> torch.Tensor:
        inputs = self.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        hidden = self.model(**inputs, return_dict=True).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = inputs["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
        return F.normalize(pooled, dim=-1)

    @torch.no_grad()
    def encode(self, texts: list[str], max_length: int, batch_size: int = 64) -> np.ndarray:
        """Inference as the base encoder runs it (its precision), longest texts first so that a batch pads
        to texts of similar length; rows come back in the order of ``texts``."""
        self.model.eval()
        if not texts:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        order = np.argsort([-len(text) for text in texts], kind="stable")
        with inference_precision(self.text_params):
            rows = [self.embed([texts[i] for i in order[start:start + batch_size]], max_length)
                    for start in range(0, len(texts), batch_size)]
        return torch.cat(rows).float().numpy()[np.argsort(order)]

    def anchor_text(self, pair: Pair) -> str:
        return f"{self.query_instruction}{pair.anchor}" if pair.source == "query" else pair.anchor

    def lora_state(self) -> dict[str, torch.Tensor]:
        return {name: tensor.detach().clone() for name, tensor in get_peft_model_state_dict(self.model).items()}

    def load_lora_state(self, state: dict[str, torch.Tensor]) -> None:
        set_peft_model_state_dict(self.model, state)

    def save(self, directory: Path) -> None:
        """The adapter as peft saves it, made the same bytes for the same weights in any run and checkout."""
        self.model.save_pretrained(str(directory))
        # peft holds target_modules as a set and writes it in hash order, which changes from run to run: sorted,
        # the same adapter is the same bytes (and DVC re-runs nothing downstream of an unchanged one).
        config_file = Path(directory) / ADAPTER_CONFIG
        config = json.loads(config_file.read_text(encoding="utf-8"))
        if isinstance(config["target_modules"], list):  # a regex string names the modules as written
            config["target_modules"] = sorted(config["target_modules"])
        # peft names the base model by the directory it was loaded from (for a packaged model, inside the
        # checkout's venv) in the config and the model card; the model's own name is the same everywhere. Set
        # before saving, a name that is no directory sends peft to the hub to look for its config.
        loaded_from = config["base_model_name_or_path"]
        config["base_model_name_or_path"] = self.base_model_name
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")  # peft's own layout
        card = Path(directory) / MODEL_CARD
        if loaded_from and card.is_file():
            card.write_text(card.read_text(encoding="utf-8").replace(loaded_from, self.base_model_name),
                            encoding="utf-8")


def info_nce(anchors: torch.Tensor, candidates: torch.Tensor, candidate_keys: list[str], positive_keys: list[str],
             temperature: float) -> torch.Tensor:
    """Cross-entropy of each anchor against its positive (candidate i) among all candidates; a candidate
    carrying the anchor's own positive text (another anime with the same genre text) is no negative."""
    logits = anchors @ candidates.T / temperature
    size = len(positive_keys)
    false_negative = torch.tensor([[key == positive_keys[i] and j != i for j, key in enumerate(candidate_keys)]
                                   for i in range(size)])
    logits = logits.masked_fill(false_negative, float("-inf"))
    return F.cross_entropy(logits, torch.arange(size))


def label_jaccard(label_sets: list[frozenset[str]]) -> torch.Tensor:
    size = len(label_sets)
    return torch.tensor([[len(a & b) / len(a | b) if a | b else 0.0 for b in label_sets] for a in label_sets]
                        ).reshape(size, size)


def sup_con(embeddings: torch.Tensor, label_sets: list[frozenset[str]], min_jaccard: float,
            temperature: float) -> torch.Tensor:
    """Multi-label supervised contrastive loss: positives are other anchors whose label sets overlap
    by at least ``min_jaccard``; anchors with no positive in the batch do not contribute."""
    size = len(label_sets)
    self_mask = torch.eye(size, dtype=torch.bool)
    positive = (label_jaccard(label_sets) >= min_jaccard) & ~self_mask
    has_positive = positive.any(dim=1)
    if not has_positive.any():
        return embeddings.sum() * 0.0
    logits = (embeddings @ embeddings.T / temperature).masked_fill(self_mask, float("-inf"))
    log_prob = (logits - torch.logsumexp(logits, dim=1, keepdim=True)).masked_fill(self_mask, 0.0)
    per_anchor = -(log_prob * positive).sum(dim=1) / positive.sum(dim=1).clamp(min=1)
    return per_anchor[has_positive].mean()


@dataclass(frozen=True)
class TrainingData:
    genre_texts: dict[str, str]
    label_sets: dict[str, frozenset[str]]


def batch_loss(model: AdapterModel, batch: Batch, data: TrainingData, params: FinetuneParams) -> torch.Tensor:
    positive_keys = [data.genre_texts[p.anime_id] for p in batch.pairs]
    candidate_keys = positive_keys + [data.genre_texts[anime] for anime in batch.negatives]
    # The encoder's passes in the training precision; the losses in float32.
    with bf16_autocast(params.autocast):
        anchors = model.embed([model.anchor_text(p) for p in batch.pairs], params.max_length)
        candidates = model.embed(candidate_keys, params.max_length)
    anchors, candidates = anchors.float(), candidates.float()
    loss = info_nce(anchors, candidates, candidate_keys, positive_keys, params.temperature)
    if params.supcon_weight:
        loss = loss + params.supcon_weight * sup_con(anchors, [data.label_sets[p.anime_id] for p in batch.pairs],
                                                     params.supcon_min_jaccard, params.temperature)
    return loss


@dataclass(frozen=True)
class DevSet:
    """Dev queries ranked against dev anime by their genre text: the early-stopping signal."""

    query_ids: list[str]
    query_texts: list[str]
    anime_ids: list[str]
    genre_texts: list[str]
    qrels: dict[str, dict[str, int]]

    def ndcg_at_10(self, model: AdapterModel, max_length: int) -> float:
        if not self.query_ids:
            return float("nan")
        queries = model.encode([f"{model.query_instruction}{text}" for text in self.query_texts], max_length)
        documents = model.encode(self.genre_texts, max_length)
        scores = queries @ documents.T
        depth = min(100, len(self.anime_ids))
        top = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
        run = Run({q: {self.anime_ids[col]: float(scores[row, col]) for col in top[row]}
                   for row, q in enumerate(self.query_ids)})
        return float(evaluate(Qrels(self.qrels), run, "ndcg@10", make_comparable=True))


@torch.no_grad()
def monitor_loss(model: AdapterModel, monitor: list[Batch], data: TrainingData, params: FinetuneParams) -> float:
    """Loss on a fixed set of training batches with dropout off: comparable from epoch to epoch."""
    model.model.eval()
    return float(np.mean([batch_loss(model, batch, data, params).item() for batch in monitor]))


@dataclass
class TrainingResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    batches_checked: int = 0


def train_adapter(model: AdapterModel, epoch_batches, data: TrainingData, guard: LeakageGuard, dev: DevSet,
                  params: FinetuneParams) -> TrainingResult:
    """Train for up to ``params.epochs``; ``epoch_batches(epoch)`` gives that epoch's batches. The model is
    left holding the LoRA weights of the trained epoch with the best dev NDCG@10."""
    optimizer = torch.optim.AdamW([p for p in model.model.parameters() if p.requires_grad], lr=params.learning_rate)
    monitor = epoch_batches(0)[:MONITOR_BATCHES]
    for batch in monitor:
        guard.check(batch)
    result = TrainingResult()
    result.history.append({"epoch": 0, "train_loss": float("nan"), "monitor_loss": monitor_loss(model, monitor, data, params),
                           "dev_ndcg_at_10": dev.ndcg_at_10(model, params.max_length), "seconds": 0.0})
    best_state, best_dev, stale = None, float("-inf"), 0
    for epoch in range(1, params.epochs + 1):
        start = time.perf_counter()
        model.model.train()
        losses = []
        for batch in tqdm(epoch_batches(epoch), desc=f"epoch {epoch}", unit="batch"):
            guard.check(batch)
            loss = batch_loss(model, batch, data, params)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        dev_ndcg = dev.ndcg_at_10(model, params.max_length)
        result.history.append({"epoch": epoch, "train_loss": float(np.mean(losses)),
                               "monitor_loss": monitor_loss(model, monitor, data, params),
                               "dev_ndcg_at_10": dev_ndcg, "seconds": time.perf_counter() - start})
        # NaN (no dev queries, as on a tiny slice) counts as no improvement after the first epoch.
        if best_state is None or dev_ndcg > best_dev:
            best_state, best_dev, stale, result.best_epoch = model.lora_state(), dev_ndcg, 0, epoch
        else:
            stale += 1
            if stale > params.patience:
                break
    model.load_lora_state(best_state)
    result.batches_checked = guard.checked
    return result
