"""The fast CPU path: an encoder exported to ONNX and quantised to int8, one score per text.

``export(model_dir, out_dir)`` writes ``model.onnx`` (fp32, the reference) and
``model.int8.onnx`` with their checksums in ``onnx.json``. Rebuilt only when the source
model's checksum or ``ONNX_VERSION`` changed.

The int8 graph is written here (``quantize_per_token``), not by ONNX Runtime's
``quantize_dynamic``: dynamic quantisation takes one activation scale per tensor, i.e. over
the whole batch, so a text's scores moved with its batch neighbours (up to 0.36 in sentiment
score; labels flipped). Here every ``MatMul`` against a weight becomes

    s = max|x| / 127 over each token's features   (one scale per token row)
    q = round(x / s) + 128 as uint8               (symmetric, zero point 128)
    y = MatMulInteger(q, W_int8, 128) · w_scale · s

(``q`` by one ``QuantizeLinear`` with a scale per row over the tokens flattened to rows: the
five elementwise operators it replaces were most of the graph's time, ``benchmarks/encoder_bound.py``)

with ``W`` quantised per output channel (symmetric int8). A token's scale depends on that
token alone, so a text's hidden states do not depend on its batch, its position in it or its
padding (tests/nlp/test_int8.py checks this bit for bit). Per-token scales are also finer than
one per tensor: every layer, the feed-forward output projections included, is int8 and the
embeddings agree with fp32 better than the per-tensor graph's did (see the model card).

The word-embedding table is stored int8 per row (a gather of int8 rows times the row's scale),
which keeps the file at a quarter of its fp32 size.

Before quantising, each matrix product's input is smoothed (SmoothQuant, Xiao et al. 2023):
transformer activations carry a few outlier channels that set every token's scale and crush
the rest, so each input channel ``c`` is divided by ``s_c = max|x_c|^α / max|W_c|^(1-α)`` and the
weight rows multiplied by it, which leaves the fp32 product unchanged and moves the outliers
into the per-channel weight scales. ``max|x_c|`` is calibrated once at build time on the
fixed parity texts (``service.nlp.build.parity_texts``), so ``s`` is a constant of the graph and
changes nothing about batch independence.

The scales are multiplied after the integer product in the order ``(int32 · w_scale) · s``:
ONNX Runtime fuses ``MatMulInteger → Cast → Mul`` into ``MatMulIntegerToFloat``, which is
right for a per-column scale but not for a per-row one (measured: cosine to fp32 fell to 0.90).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from service.nlp.build.parity_texts import parity_texts
from service.nlp.checksums import intact_build, sha256_file

# 5: quantisation by one per-axis QuantizeLinear (same values, 1.26× faster); 6: no pooler in the
# graph (XLM-R's was initialised at random on every build: the files differed, the output not)
ONNX_VERSION = 6
OPSET = 17
SMOOTH_ALPHA = 0.5
CALIBRATION_TOKENS = 256


def _source_digest(model_dir: Path) -> str:
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        h.update(sha256_file(Path(model_dir) / name).encode())
    return h.hexdigest()


def export(model_dir: Path, out_dir: Path, *, force: bool = False) -> dict:
    import torch  # heavy (seconds, GBs): only when a model is built or trained
    from transformers import AutoModel  # heavy: only when a model is built

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    record = out_dir / "onnx.json"
    src = _source_digest(model_dir)
    if not force:
        kept = intact_build(record, source_digest=src, onnx_version=ONNX_VERSION)
        if kept is not None:
            return {**kept, "reused": True}
    out_dir.mkdir(parents=True, exist_ok=True)
    from service.nlp.encoder import _accepts_pooling_flag

    # no pooler: only the token states are exported (mean pooling is Radar's), and a checkpoint
    # without pooler weights (multilingual-e5) would get random ones, a different file per build
    model = (
        AutoModel.from_pretrained(model_dir, add_pooling_layer=False)
        if _accepts_pooling_flag(model_dir)
        else AutoModel.from_pretrained(model_dir)
    ).eval()
    ids = torch.tensor([[0, 100, 200, 300, 2], [0, 100, 200, 2, 1]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    fp32 = out_dir / "model.onnx"
    torch.onnx.export(
        model,
        (ids, mask),
        str(fp32),
        input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state"],
        opset_version=OPSET,
        dynamo=False,
        dynamic_axes={
            "input_ids": {0: "batch", 1: "tokens"},
            "attention_mask": {0: "batch", 1: "tokens"},
            "last_hidden_state": {0: "batch", 1: "tokens"},
        },
    )
    int8 = out_dir / "model.int8.onnx"
    stats = quantize_per_token(fp32, int8, smooth=calibrate(fp32, model_dir))
    files = {p.name: sha256_file(p) for p in (fp32, int8)}
    rec = {
        "onnx_version": ONNX_VERSION,
        "source": str(model_dir),
        "source_digest": src,
        "files": files,
        "quantisation": f"int8, one activation scale per token, per-channel weights "
        f"(service.nlp.build.onnx_export.quantize_per_token): {stats['matmuls']} matrix "
        f"products ({stats['smoothed']} inputs smoothed, alpha {SMOOTH_ALPHA}), "
        f"{stats['embeddings']} embedding table(s) int8 per row",
    }
    record.write_text(json.dumps(rec, indent=2))
    return {**rec, "reused": False}


def calibrate(fp32: Path, model_dir: Path, texts: list[str] | None = None) -> dict[str, np.ndarray]:
    """Per input of every weight ``MatMul`` of the fp32 graph: the largest ``|x|`` of each
    channel over the calibration texts' tokens (each text run alone, so no padding counts)."""
    import onnx  # heavy: only when a model is exported
    import onnxruntime as ort  # heavy: only when an ONNX model is loaded
    from transformers import AutoTokenizer  # heavy: only when a model is built

    if texts is None:
        prefix = (
            json.loads((Path(model_dir) / "radar_encoder.json").read_text()).get(
                "passage_prefix", ""
            )
            if (Path(model_dir) / "radar_encoder.json").exists()
            else ""
        )
        texts = [prefix + t for _, t in parity_texts()]
    model = onnx.load(str(fp32))
    weights = {i.name for i in model.graph.initializer}
    inputs = sorted(
        {n.input[0] for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights}
    )
    have = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=x) for x in inputs if x not in have)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )  # keep the named values
    session = ort.InferenceSession(
        model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    tok = AutoTokenizer.from_pretrained(model_dir)
    peak: dict[str, np.ndarray] = {}
    for text in texts:
        ids = np.array(
            [tok(text, truncation=True, max_length=CALIBRATION_TOKENS)["input_ids"]], np.int64
        )
        values = session.run(inputs, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        for name, v in zip(inputs, values):
            m = np.abs(v.reshape(-1, v.shape[-1])).max(axis=0)
            peak[name] = np.maximum(peak[name], m) if name in peak else m
    return peak


def quantize_per_token(
    src: Path,
    dst: Path,
    *,
    smooth: dict[str, np.ndarray] | None = None,
    alpha: float = SMOOTH_ALPHA,
    min_embedding_rows: int = 10_000,
) -> dict:
    """Rewrite the fp32 graph at ``src`` into the per-token int8 graph at ``dst`` (see the
    module docstring); ``smooth`` (from ``calibrate``) smooths each product's input first.
    Returns how many matrix products, smoothed inputs and embedding tables were rewritten."""
    import onnx  # heavy: only when a model is exported
    from onnx import TensorProto, helper, numpy_helper  # heavy: only when a model is exported

    model = onnx.load(str(src))
    graph = model.graph
    if any(o.domain in ("", "ai.onnx") and o.version != OPSET for o in model.opset_import):
        raise ValueError(f"{src}: expected opset {OPSET} (ReduceMax takes axes as an attribute)")
    weights = {i.name: i for i in graph.initializer}
    added: list = []

    def const(name: str, value: np.ndarray) -> str:
        added.append(numpy_helper.from_array(value, name))
        return name

    eps, q_max = (
        const("ptq/eps", np.array(1e-12, np.float32)),
        const("ptq/127", np.array(127.0, np.float32)),
    )
    zero_point = const("ptq/zp", np.array(128, np.uint8))
    flat, column = (
        const("ptq/flat", np.array([-1], np.int64)),
        const("ptq/column", np.array([-1, 1], np.int64)),
    )
    first, last = (
        const("ptq/first", np.array([0], np.int64)),
        const("ptq/last", np.array([-1], np.int64)),
    )
    # one smoothing factor per input, shared by the products that read it (query, key, value)
    factors: dict[str, np.ndarray] = {}
    for x, peak in (smooth or {}).items():
        readers = [
            numpy_helper.to_array(weights[n.input[1]])
            for n in graph.node
            if n.op_type == "MatMul" and n.input[0] == x and n.input[1] in weights
        ]
        if readers:
            w_peak = np.abs(np.concatenate(readers, axis=1)).max(axis=1)
            f = np.power(np.maximum(peak, 1e-5), alpha) / np.power(
                np.maximum(w_peak, 1e-5), 1 - alpha
            )
            factors[x] = np.clip(f, 1e-2, 1e2).astype(np.float32)
    nodes, n_mm, n_emb = [], 0, 0
    smoothed: dict[str, str] = {}
    for node in graph.node:
        w = weights.get(node.input[1]) if len(node.input) > 1 else None
        if node.op_type == "MatMul" and w is not None and len(w.dims) == 2:
            W = numpy_helper.to_array(w).astype(np.float32)
            x = node.input[0]
            if x in factors:
                W = W * factors[x][:, None]
                if x not in smoothed:
                    smoothed[x] = f"ptq/smooth{len(smoothed)}"
                    inv = const(smoothed[x] + "/inv", (1.0 / factors[x]).astype(np.float32))
                    nodes.append(helper.make_node("Mul", [x, inv], [smoothed[x]]))
                x = smoothed[x]
            w_scale = np.maximum(np.abs(W).max(axis=0), 1e-12) / 127.0
            p = f"ptq/mm{n_mm}/"
            n_mm += 1
            const(p + "W", np.clip(np.round(W / w_scale), -127, 127).astype(np.int8))
            const(p + "w_scale", w_scale.astype(np.float32))
            d_in, d_out = W.shape
            const(p + "rows_in", np.array([-1, d_in], np.int64))
            const(p + "d_out", np.array([d_out], np.int64))
            # the tokens flattened to rows, quantised by one per-axis QuantizeLinear (a scale
            # and zero point per row): the same uint8 values as Div, Round, Add 128, Clip and
            # Cast, bit for bit, in one operator instead of five (1.26× the encoder's speed)
            nodes += [
                helper.make_node("Abs", [x], [p + "abs"]),
                helper.make_node("ReduceMax", [p + "abs"], [p + "max"], axes=[-1], keepdims=1),
                helper.make_node("Max", [p + "max", eps], [p + "max_eps"]),
                helper.make_node("Div", [p + "max_eps", q_max], [p + "s"]),
                helper.make_node("Reshape", [x, p + "rows_in"], [p + "x2"]),
                helper.make_node("Reshape", [p + "s", flat], [p + "s1"]),
                helper.make_node("Reshape", [p + "s", column], [p + "s2"]),
                helper.make_node("Shape", [p + "s1"], [p + "n"]),
                helper.make_node("Expand", [zero_point, p + "n"], [p + "zp"]),
                helper.make_node(
                    "QuantizeLinear", [p + "x2", p + "s1", p + "zp"], [p + "q"], axis=0
                ),
                helper.make_node("MatMulInteger", [p + "q", p + "W", zero_point], [p + "acc"]),
                helper.make_node("Cast", [p + "acc"], [p + "acc_f"], to=TensorProto.FLOAT),
                helper.make_node("Mul", [p + "acc_f", p + "w_scale"], [p + "y_w"]),
                helper.make_node("Mul", [p + "y_w", p + "s2"], [p + "y2"]),
                helper.make_node("Shape", [x], [p + "x_shape"]),
                helper.make_node("Slice", [p + "x_shape", first, last], [p + "lead"]),
                helper.make_node("Concat", [p + "lead", p + "d_out"], [p + "y_shape"], axis=0),
                helper.make_node(
                    "Reshape", [p + "y2", p + "y_shape"], [node.output[0]], name=node.name
                ),
            ]
        elif (
            node.op_type == "Gather"
            and node.input[0] in weights
            and len(weights[node.input[0]].dims) == 2
            and weights[node.input[0]].dims[0] >= min_embedding_rows
        ):
            E = numpy_helper.to_array(weights[node.input[0]]).astype(np.float32)
            row_scale = np.maximum(np.abs(E).max(axis=1, keepdims=True), 1e-12) / 127.0
            p = f"ptq/emb{n_emb}/"
            n_emb += 1
            const(p + "E", np.clip(np.round(E / row_scale), -127, 127).astype(np.int8))
            const(p + "row_scale", row_scale.astype(np.float32))
            axis = [helper.make_attribute("axis", 0)]
            g_rows = helper.make_node("Gather", [p + "E", node.input[1]], [p + "rows"])
            g_scale = helper.make_node("Gather", [p + "row_scale", node.input[1]], [p + "scales"])
            g_rows.attribute.extend(axis)
            g_scale.attribute.extend(axis)
            nodes += [
                g_rows,
                g_scale,
                helper.make_node("Cast", [p + "rows"], [p + "rows_f"], to=TensorProto.FLOAT),
                helper.make_node(
                    "Mul", [p + "rows_f", p + "scales"], [node.output[0]], name=node.name
                ),
            ]
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept + added)
    onnx.checker.check_model(model, full_check=False)
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(dst)
    return {"matmuls": n_mm, "smoothed": len(smoothed), "embeddings": n_emb}
