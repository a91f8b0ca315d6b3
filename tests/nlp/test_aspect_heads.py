"""Trained aspect heads: the served numpy model is the trained torch model, and the tagger
serves a head under a taxonomy aspect only when it was validated on that aspect's definition."""

import numpy as np
import torch

from service.domain import Taxonomy
from service.nlp.aspect_heads import AspectHeads, HeadHit, _rescale
from service.nlp.aspects import ZeroShotAspectTagger
from service.nlp.tagger import AspectTagger, definition_fingerprint
from training.train_aspects import HeadsModule


def test_numpy_heads_match_the_torch_module(tmp_path):
    torch.manual_seed(0)
    module = HeadsModule(dim=8, k=3, hidden=6, s_hidden=5).eval()
    with torch.no_grad():
        module.E.normal_()
    rng = np.random.default_rng(0)
    t = rng.normal(size=8).astype(np.float32)
    clauses = rng.normal(size=(4, 8)).astype(np.float32)
    with torch.no_grad():
        z, s = module(torch.from_numpy(t)[None], torch.from_numpy(clauses)[None], torch.ones(1, 4))
    heads = AspectHeads("t", ["a", "b", "c"], module.export())
    heads.save(tmp_path / "h.safetensors")
    loaded = AspectHeads.load(tmp_path / "h.safetensors")
    prob, evidence, sent = loaded.predict(t, clauses)
    assert np.allclose(prob, torch.sigmoid(z[0]).numpy(), atol=1e-5)
    assert np.allclose(sent, torch.softmax(s[0], -1).numpy(), atol=1e-5)
    assert evidence.shape == (3,) and ((0 <= evidence) & (evidence < 4)).all()


def test_padding_clauses_do_not_change_the_torch_result():
    torch.manual_seed(1)
    module = HeadsModule(dim=8, k=2, hidden=6, s_hidden=5).eval()
    t, c = torch.randn(1, 8), torch.randn(1, 2, 8)
    padded = torch.cat([c, torch.randn(1, 3, 8)], 1)
    with torch.no_grad():
        a = module(t, c, torch.ones(1, 2))
        b = module(t, padded, torch.tensor([[1.0, 1, 0, 0, 0]]))
    assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-5)


class _Heads(AspectHeads):
    """Heads with fixed outputs, to test how the tagger combines them."""

    def __init__(self, prob):
        super().__init__("fixed", ["food", "ambience"], {}, threshold=0.4)
        self._prob = np.asarray(prob)

    def predict(self, text_emb, clause_emb):
        sent = np.array([[0.1, 0.1, 0.8], [0.3, 0.4, 0.3]])
        return self._prob, np.array([1, 0]), sent


def _taxonomy():
    return Taxonomy.model_validate(
        {
            "aspects": [
                {
                    "id": "taste",
                    "names": {"en": "Taste"},
                    "description": "flavour",
                    "examples": ["tasty"],
                },
                {
                    "id": "packaging",
                    "names": {"en": "Packaging"},
                    "description": "the box",
                    "examples": ["box crushed"],
                },
            ]
        }
    )


class _ZeroShot(ZeroShotAspectTagger):
    """Zero-shot scores fixed: taste 0.9 on clause 0, packaging 0.8 on clause 1."""

    def fit(self, encoder):
        return self

    def clause_scores(self, clause_emb):
        return np.array([[0.9, 0.0], [0.0, 0.8]])

    def confidence(self, scores):
        return scores


def _validated(tax, *ids):
    return {a.id: definition_fingerprint(a) for a in tax.aspects if a.id in ids}


def test_a_validated_head_serves_its_aspect_the_rest_stay_with_the_model():
    tax = _taxonomy()
    zero = _ZeroShot(tax, threshold=0.5, slope=25)
    heads = [(_Heads([0.7, 0.9]), {"food": "taste", "ambience": "no_such_aspect"})]
    tagger = AspectTagger(tax, zero_shot=zero, heads=heads, validated=_validated(tax, "taste")).fit(
        None
    )
    hits = {h.aspect: h for h in tagger.tag(np.zeros(4), np.zeros((2, 4)))}
    assert isinstance(hits["taste"], HeadHit) and hits["taste"].clause == 1
    assert hits["taste"].probabilities == (0.1, 0.1, 0.8)
    assert not isinstance(hits["packaging"], HeadHit)  # not covered: the model part
    # below the head's threshold the covered aspect is not tagged, even if zero-shot would
    tagger = AspectTagger(
        tax,
        zero_shot=zero,
        heads=[(_Heads([0.3, 0.9]), {"food": "taste"})],
        validated=_validated(tax, "taste"),
    ).fit(None)
    assert {h.aspect for h in tagger.tag(np.zeros(4), np.zeros((2, 4)))} == {"packaging"}


def test_a_head_is_never_served_by_name_alone():
    """The mapping names the aspect, but without a validation of its current definition (or
    after the definition changed) the head is not used: the model part tags it."""
    tax = _taxonomy()
    zero = _ZeroShot(tax, threshold=0.5, slope=25)
    heads = [(_Heads([0.3, 0.9]), {"food": "taste"})]
    unvalidated = AspectTagger(tax, zero_shot=zero, heads=heads).fit(None)
    assert unvalidated.covered == set()
    hits = {h.aspect: h for h in unvalidated.tag(np.zeros(4), np.zeros((2, 4)))}
    assert set(hits) == {"taste", "packaging"} and not isinstance(hits["taste"], HeadHit)
    stale = _validated(tax, "taste")
    edited = Taxonomy.model_validate(
        {
            "aspects": [
                {**tax.aspects[0].model_dump(), "description": "anything about the food at all"},
                tax.aspects[1].model_dump(),
            ]
        }
    )
    assert (
        AspectTagger(
            edited,
            zero_shot=_ZeroShot(edited, threshold=0.5, slope=25),
            heads=heads,
            validated=stale,
        ).covered
        == set()
    )
    assert AspectTagger(tax, zero_shot=zero, heads=heads, validated=stale).covered == {"taste"}


def test_threshold_rescaling_keeps_order_and_puts_the_cut_at_one_half():
    assert _rescale(0.4, 0.4) == 0.5 and _rescale(0.0, 0.4) == 0.0 and _rescale(1.0, 0.4) == 1.0
    assert _rescale(0.2, 0.4) < _rescale(0.39, 0.4) < 0.5 < _rescale(0.41, 0.4)
