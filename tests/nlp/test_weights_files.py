"""Weight files whose bytes depend on their contents alone: a head retrained to the same weights
keeps its checksum (and the pipeline its version), in any process."""

import subprocess
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

from service.nlp.checksums import read_weights, sha256_file, write_weights

WRITE = """
import sys
import numpy as np
from service.nlp.checksums import write_weights
rng = np.random.default_rng(3)
write_weights(
    sys.argv[1],
    {"w": rng.normal(size=(4, 3)).astype(np.float32), "b": np.arange(3), "flag": np.array(True)},
    {f"key{i}": str(i) * i for i in range(12)},
)
"""


def test_two_processes_write_the_same_bytes(tmp_path):
    paths = [tmp_path / f"{i}.safetensors" for i in range(3)]
    for i, p in enumerate(paths):
        # a new process each time, with its own hash seed: save_file's metadata order changed
        subprocess.run(
            [sys.executable, "-c", WRITE, str(p)],
            check=True,
            env={"PYTHONHASHSEED": str(i), "PATH": "/usr/bin:/bin"},
        )
    assert len({sha256_file(p) for p in paths}) == 1


def test_the_reference_reader_reads_every_array_and_the_metadata(tmp_path):
    arrays = {
        "f16": np.linspace(-1, 1, 6, dtype=np.float16).reshape(2, 3),
        "f32": np.array([[1.5, -2.0]], np.float32),
        "f64": np.array([np.pi, np.e]),
        "i64": np.arange(-3, 4, dtype=np.int64),
        "i8": np.array([-128, 0, 127], np.int8),
        "mask": np.array([True, False, True]),
        "scalar": np.array(7.0, np.float32),
        "z_empty": np.zeros((0, 4), np.float32),
    }
    meta = {"threshold": "0.425", "labels": '["negative", "neutral", "positive"]', "名": "值"}
    path = tmp_path / "w.safetensors"
    write_weights(path, arrays, meta)
    got = load_file(str(path))
    assert set(got) == set(arrays)
    for k, a in arrays.items():
        assert got[k].dtype == a.dtype and got[k].shape == a.shape
        np.testing.assert_array_equal(got[k], a)
    with safe_open(str(path), framework="numpy") as fh:
        assert fh.metadata() == meta
    assert read_weights(path)[1] == meta
    head_len = int.from_bytes(path.read_bytes()[:8], "little")
    assert head_len % 8 == 0


def test_a_head_saved_twice_is_byte_identical_and_loads_to_the_same_model(tmp_path):
    from service.nlp.harm import HarmVerifier

    rng = np.random.default_rng(0)
    v = HarmVerifier(
        rng.normal(size=8),
        np.abs(rng.normal(size=8)) + 0.1,
        rng.normal(size=8),
        -0.3,
        0.425,
        {"C": 0.01, "examples": 420},
    )
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    v.save(a)
    v.save(b)
    assert a.read_bytes() == b.read_bytes()
    x = rng.normal(size=(5, 8))
    back = HarmVerifier.load(a)
    np.testing.assert_allclose(back.probability(x), v.probability(x), rtol=1e-5)
    assert back.meta == v.meta and back.threshold == v.threshold
