"""Reads ae-train's checkpoint.safetensors with nothing of aegraph: the safetensors layout by hand
(u64 header length, JSON header, raw little-endian data) and numpy. Trains a small ae on a
generated IDX set, then checks the names, dtypes, shapes and byte ranges of every tensor, the
counters against the steps taken, and the test BCE and squared error of a numpy forward pass of
the saved parameters against the ones ae-train wrote to metrics.json.
Usage: read_checkpoint.py AE_TRAIN WORK_DIR
"""
import gzip
import json
import math
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import make_idx  # noqa: E402

TRAIN_N, TEST_N, BATCH, EPOCHS, CODE = 600, 200, 100, 2, 32


def fail(message):
    print(f"read_checkpoint.py: {message}", file=sys.stderr)
    sys.exit(1)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    metadata = header.pop("__metadata__", {})
    data = raw[8 + header_len :]
    ranges = sorted(tuple(t["data_offsets"]) for t in header.values())
    if ranges[0][0] != 0 or ranges[-1][1] != len(data) or any(a[1] != b[0] for a, b in zip(ranges, ranges[1:])):
        fail(f"{path}: the tensors' byte ranges do not tile the data section")
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            fail(f"{path}: {name} is {t['dtype']}, expected F32")
        begin, end = t["data_offsets"]
        values = np.frombuffer(data[begin:end], dtype="<f4")
        if values.size != math.prod(t["shape"]):
            fail(f"{path}: {name} holds {values.size} values for shape {t['shape']}")
        tensors[name] = values.reshape(t["shape"])
    return tensors, metadata


def test_images(folder):
    with gzip.open(os.path.join(folder, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        raw = f.read()
    n, rows, cols = struct.unpack(">III", raw[4:16])
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, rows * cols).astype(np.float64) / 255.0


def check_close(what, ours, theirs, rel=1e-4):
    if not abs(ours - theirs) <= rel * abs(theirs):
        fail(f"{what}: numpy gives {ours:.7g}, ae-train wrote {theirs:.7g}")
    print(f"{what}: numpy {ours:.7g}, ae-train {theirs:.7g}")


def main():
    ae_train, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    data, run = os.path.join(work, "data"), os.path.join(work, "run")
    make_idx.write_folder(data, TRAIN_N, TEST_N)
    subprocess.run([ae_train, "--model", "ae", "--sizes", f"784,{CODE}", "--epochs", str(EPOCHS), "--batch", str(BATCH),
                    "--threads", "1", "--data", data, "--out", run], check=True, stdout=subprocess.DEVNULL)

    tensors, metadata = read_safetensors(os.path.join(run, "checkpoint.safetensors"))
    with open(os.path.join(run, "metrics.json")) as f:
        metrics = json.load(f)
    shapes = {"encoder.weight": [CODE, 784], "encoder.bias": [CODE], "decoder.weight": [784, CODE], "decoder.bias": [784]}
    for name, shape in shapes.items():
        if name not in tensors or list(tensors[name].shape) != shape:
            fail(f"{name}: expected shape {shape}, found {tensors[name].shape if name in tensors else 'nothing'}")
        if f"optim.adagrad.sum.{name}" not in tensors:
            fail(f"no optimiser state optim.adagrad.sum.{name}")
    if metadata.get("format") != "aegraph.checkpoint/1":
        fail(f"metadata format {metadata.get('format')!r}")
    steps = EPOCHS * math.ceil(TRAIN_N / BATCH)
    for counter in ("optim.t", "trainer.step"):
        if float(tensors[counter]) != steps or metrics["epochs"][-1]["step"] != steps:
            fail(f"{counter} = {float(tensors[counter])}, metrics step {metrics['epochs'][-1]['step']}, expected {steps}")
    history = json.loads(metadata["history"])
    check_close("history's last test_bce", history[-1]["test_bce"], metrics["test_bce"], rel=1e-12)

    x = test_images(data)
    h = np.maximum(x @ tensors["encoder.weight"].T.astype(np.float64) + tensors["encoder.bias"], 0.0)
    y = 1.0 / (1.0 + np.exp(-(h @ tensors["decoder.weight"].T.astype(np.float64) + tensors["decoder.bias"])))
    bce = -np.mean(x * np.maximum(np.log(y), -100.0) + (1 - x) * np.maximum(np.log1p(-y), -100.0))
    check_close("test BCE per pixel", bce, metrics["test_bce"])
    check_close("test squared error per image", np.mean(np.sum((y - x) ** 2, axis=1)), metrics["test_mse"])
    print(f"read {len(tensors)} tensors; the checkpoint agrees with metrics.json")


if __name__ == "__main__":
    main()
