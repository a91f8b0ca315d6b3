"""The served encoders tokenise through the ``tokenizers`` library (``encoder._Tokenizer``):
the same token ids, character offsets and special tokens as transformers' ``AutoTokenizer``
on the same files, and a process that scores never imports torch or transformers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from service.config import Settings
from service.nlp.encoder import _Tokenizer
from service.nlp.registry import ModelRegistry

TEXTS = [
    "The soup was cold and the waiter was rude.",
    "  leading and trailing spaces, tabs\tand\nnewlines  ",
    "包装破了，味道还行，下次还会买！",
    "Überraschend gut: café, naïve, Straße, ﬁne ligatures",
    "Het eten was koud maar de bediening was vriendelijk",
    "emoji 😡👍🏽 and #hashtags @handles https://example.com/x?y=1",
    "ＦＵＬＬ－ＷＩＤＴＨ　ｔｅｘｔ and ½ fractions",
    "",
    "x" * 600,
    "辣" * 300,
]


def _encoders():
    st = Settings()
    reg = ModelRegistry(st.models_dir, taxonomy=st.taxonomy, cache_dir=st.model_cache_dir)
    out = []
    for name in reg.manifest.encoders:
        if reg.encoder_runtime(name) == "onnx-int8":
            out.append((name, reg.encoder_path(name)))
    return out


@pytest.mark.parametrize("name, path", _encoders())
def test_the_same_tokens_and_offsets_as_transformers(name, path):
    from transformers import AutoTokenizer

    ref = AutoTokenizer.from_pretrained(path)
    ours = _Tokenizer.of(path)
    assert (ours.cls_token_id, ours.sep_token_id, ours.pad_token_id) == (
        ref.cls_token_id,
        ref.sep_token_id,
        ref.pad_token_id,
    )
    for text in TEXTS[:3]:  # one text, with the model's start and end tokens
        assert ours(text)["input_ids"] == ref(text)["input_ids"], name
    for prefix in ("", "query: "):
        texts = [prefix + t for t in TEXTS]
        a = ref(texts, add_special_tokens=False, return_offsets_mapping=True)
        b = ours(texts, add_special_tokens=False, return_offsets_mapping=True)
        assert b["input_ids"] == a["input_ids"], name
        assert [list(map(tuple, o)) for o in b["offset_mapping"]] == [
            list(map(tuple, o)) for o in a["offset_mapping"]
        ], name


def test_scoring_imports_neither_torch_nor_transformers():
    code = (
        "import sys\n"
        "from service.config import Settings\n"
        "from service.runtime import Runtime\n"
        "p = Runtime(Settings()).registry.pipeline('default')\n"
        "s = p.score(['The soup was cold and the waiter was rude.', '包装破了，味道还行'])\n"
        "assert s[0].score.sentiment == 'negative', s[0].score\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
