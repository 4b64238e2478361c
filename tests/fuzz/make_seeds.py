#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets: tests/corpus/<target>/seed-*, small valid inputs and
slightly broken ones. Regression inputs (regress-*) are kept as they are.

    python3 tests/fuzz/make_seeds.py [--checkpoint RUN/model.ckpt ...]

The checkpoint seeds come from real runs (bazel run //tools:train -- --config X --out RUN with a tiny
model); without --checkpoint the existing checkpoint seeds are left alone.
"""
import argparse
import gzip
import pathlib
import struct
import zlib

ROOT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "corpus"


def split2(a: bytes, b: bytes) -> bytes:
    """The two-file layout of idx_fuzz and npy_fuzz: [u16 len(a)][a][b]."""
    return struct.pack("<H", len(a)) + a + b


def gz(b: bytes) -> bytes:
    return gzip.compress(b, mtime=0)


def idx(magic: int, dims, data: bytes) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + data


def npy(descr: str, shape, data: bytes, version=1, fortran=False) -> bytes:
    shape_txt = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
    header = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape_txt}, }}"
    pre = 10 if version == 1 else 12
    header += " " * ((64 - (pre + len(header) + 1) % 64) % 64) + "\n"
    size = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header.encode() + data


def f32(*v) -> bytes:
    return struct.pack(f"<{len(v)}f", *v)


def csv_seeds():
    jets = "a,b,class\n0.5,1.5,g\n-2,3e-2,q\n4,+5,t\n1,2,g\n"
    return {
        "jets.csv": jets,
        "jets.csv.gz": gz(jets.encode()),
        "quoted_crlf.csv": "'a',\"b\",class\r\n1,2,\"w\"\r\n3,4,'z'\r\n\r\n",
        "bom_blank.csv": "\ufeffa,b,class\n\n1,2,0\n\n3,4,1\n",
        "spaces.csv": "x  y\n 1\t2\n3   4 \n5 6\n",
        "headerless.csv": "1,2,0\n3,4,1\n5,6,0\n",
        "headerless_spaces.txt": "0.5 1 2\n1.5 3 4\n",
        "int_labels.csv": "a,b,class\n1,2,10\n3,4,2\n5,6,-1\n",
        "escaped.csv": 'a,b,class\n1,2,"say ""hi"""\n3,4,\'it\'\'s\'\n',
        "bad_unterminated.csv": 'a,b,class\n1,2,"g\n',
        "bad_ragged.csv": "a,b,class\n1,2,g\n3,g\n",
        "bad_nan.csv": "a,b,class\n1,nan,g\n2,3,q\n",
        "bad_range.csv": "x,y\n1e39,2\n3,-4e40\n",
        "bad_text.csv": "a,b,class\n1,two,g\n",
        "bad_dup_header.csv": "class,b,class\n1,2,3\n",
        "bad_fraction_label.csv": "a,b,class\n1,2,0.5\n3,4,1\n",
        "bad_after_quote.csv": 'a,b,class\n"1"x,2,g\n',
        "only_header.csv": "a,b,class\n",
        "empty.csv": "",
    }


def idx_seeds():
    img = idx(2051, [2, 3, 3], bytes(range(0, 255, 14))[:18])
    lab = idx(2049, [2], bytes([1, 7]))
    return {
        "valid": split2(lab, img),
        "valid_gz": split2(gz(lab), gz(img)),
        "bad_magic": split2(lab, idx(2052, [2, 3, 3], bytes(18))),
        "truncated": split2(lab, img[:-3]),
        "trailing": split2(lab + b"\0", img),
        "count_mismatch": split2(idx(2049, [3], bytes(3)), img),
        "huge_dims": split2(lab, idx(2051, [0xFFFFFFFF, 0xFFFF, 0xFFFF], bytes(4))),
        "zero_images": split2(idx(2049, [0], b""), idx(2051, [0, 3, 3], b"")),
        "short_header": split2(lab, img[:9]),
    }


def npy_seeds():
    x = npy("<f4", (2, 3), f32(1, 2, 3, 4, 5, 6))
    y = npy("|u1", (2,), bytes([0, 1]))
    return {
        "valid": split2(x, y),
        "valid_gz": split2(gz(x), gz(y)),
        "f8_i8_v2": split2(npy("<f8", (2, 2), struct.pack("<4d", 1, 2, 3, 4), version=2),
                           npy("<i8", (2, 1), struct.pack("<2q", 3, 0), version=3)),
        "regression": split2(npy("<f4", (3,), f32(1, 2, 3)), npy("<f4", (3, 2), f32(1, 2, 3, 4, 5, 6))),
        "bool_i2": split2(npy("|b1", (2, 2), bytes([0, 1, 1, 0])), npy("<i2", (2,), struct.pack("<2h", 1, 0))),
        "bad_fortran": split2(npy("<f4", (2, 3), f32(*range(6)), fortran=True), y),
        "bad_big_endian": split2(npy(">f4", (2, 3), bytes(24)), y),
        "bad_nan": split2(npy("<f4", (2, 3), f32(1, float("nan"), 3, 4, 5, 6)), y),
        "bad_label": split2(x, npy("<f4", (2,), f32(0.5, 1))),
        "bad_shape": split2(x, npy("|u1", (3,), bytes(3))),
        "bad_dtype": split2(npy("<c8", (2,), bytes(16)), y),
        "truncated": split2(x[:-4], y),
        "zero_dim": split2(npy("<f4", (2, 0), b""), y),
        "scalar": split2(npy("<f4", (), f32(1)), y),
    }


def text(s: str) -> bytes:
    return s.encode()


def config_seeds():
    repo = ROOT.parents[1]
    seeds = {f"data_{p.stem}.yaml": p.read_bytes() for p in sorted((repo / "data").glob("*.yaml"))}
    data = "data: {path: d.csv, label: class}\n"
    seeds.update({
        "minimal.yaml": text(data + "model: {layers: [{type: dense, units: 2}]}\n"),
        "conv2d.yaml": text(data + """model:
  layers:
    - {type: conv2d, name: c1, filters: 2, kernel_size: 3, strides: 1, padding: same, activation: relu}
    - {type: depthwise_conv2d, name: d1, kernel_size: 2}
    - {type: max_pool2d, name: p1, pool_size: 2}
    - {type: global_avg_pool, name: g}
    - {type: dense, name: out, units: 3, activation: softmax}
training: {epochs: 2, batch_size: 4, optimizer: {type: sgd, momentum: 0.9, nesterov: true}}
"""),
        "conv1d.yaml": text("""data: {format: npy, train_x: x.npy, train_y: y.npy, task: regression}
model:
  layers:
    - {type: conv1d, name: c1, filters: 4, kernel_size: 3, padding: valid}
    - {type: avg_pool1d, name: p1}
    - {type: layer_norm, name: ln}
    - {type: flatten, name: f}
    - {type: dropout, name: dr, rate: 0.1}
    - {type: dense, name: out, units: 1}
training: {loss: mse, lr_schedule: {type: cosine, first_cycle: 5, t_mul: 2}}
"""),
        "transformer.yaml": text("""data: {format: idx, train_x: a, train_y: b, test_x: c, test_y: d}
model:
  layers:
    - {type: dense, name: proj, units: 8}
    - {type: positional_embedding, name: pos}
    - {type: transformer_block, name: t1, heads: 2, ff_dim: 8, causal: true}
    - {type: multi_head_attention, name: att, heads: 2, key_dim: 4}
    - {type: global_avg_pool, name: g}
    - {type: dense, name: out, units: 2}
training: {early_stopping: {monitor: val_auc, patience: 3}}
"""),
        "embedding.yaml": text(data + """model:
  layers:
    - {type: embedding, name: emb, vocab_size: 16, dim: 4}
    - {type: reshape, name: r, shape: [16]}
    - {type: leaky_relu, name: lr, alpha: 0.1}
    - {type: activation, name: act, activation: gelu}
    - {type: dense, name: out, units: 2, kernel_initializer: he_normal, use_bias: false}
"""),
        "prune_structured_conv.yaml": text(data + """model:
  layers:
    - {type: conv2d, name: c1, filters: 4, kernel_size: 3, activation: relu}
    - {type: max_pool2d, name: p1, pool_size: 2}
    - {type: flatten, name: f}
    - {type: dense, name: fc, units: 6, activation: relu}
    - {type: dense, name: out, units: 3}
compression:
  pruning: {pruning_method: pdp, sparsity: 0.5, pdp: {structured_pruning: true}, wanda: {N: 1, M: 3}}
  quantization: {default_fractional_bits: 4}
training: {epochs: 2, rounds: 2, rewind: every-round, fine_tuning_epochs: 1}
"""),
        "hgq_export.yaml": text(data + """model:
  layers:
    - {type: dense, name: fc1, units: 4, activation: relu}
    - {type: residual, name: res, layers: [{type: dense, name: fc, units: 4, activation: tanh}]}
    - {type: dense, name: out, units: 2, activation: sigmoid}
compression:
  quantization:
    default_integer_bits: 1
    layer_specific: {fc1: {weight: {integer_bits: 2, fractional_bits: 3}}, out: {enable: false}}
export: {target: hls, name: tiny, reuse_factor: 2, reuse_factor_per_layer: {fc1: 4}, tb_samples: 10}
"""),
        "bad_syntax.yaml": text("data: {path: [x\nmodel: : :\n"),
        "bad_unknown_key.yaml": text(data + "modle: {layers: []}\n"),
        "bad_units.yaml": text(data + "model: {layers: [{type: dense, units: -3}]}\n"),
        "bad_type.yaml": text(data + "model: {layers: [{type: dense, units: many}]}\n"),
        "bad_layer_type.yaml": text(data + "model: {layers: [{type: densse, units: 2}]}\n"),
        "bad_list.yaml": text("- a\n- b\n"),
        "bad_dup_name.yaml": text(data + "model: {layers: [{type: relu, name: a}, {type: relu, name: a}]}\n"),
    })
    return seeds


def quantization_seeds():
    return {
        "defaults.yaml": "{}\n",
        "jet.yaml": """enable_quantization: true
use_high_granularity_quantization: true
default_integer_bits: 2
default_fractional_bits: 5
use_symmetric_quantization: true
default_data_integer_bits: 2
default_data_fractional_bits: 6
overflow_mode_data: WRAP
round_mode: RND
granularity: per_weight
data_granularity: per_weight
hgq_beta: 5.0e-7
beta_schedule: {type: log, start_epoch: 4, end_epoch: 200, final_beta: 1.0e-3}
""",
        "layers.yaml": """default_data_keep_negatives: false
overflow_mode_parameters: WRAP
round_mode: TRN
granularity: per_channel
data_granularity: per_tensor
bit_range: {min_fractional_bits: -2, max_fractional_bits: 12, min_integer_bits: -4, max_integer_bits: 8}
pid: {p: 1, i: 0.1, d: 0}
target_ebops: 1000
hgq_gamma: 1.0e-8
beta_schedule: {type: linear, start_epoch: 0, end_epoch: 10}
use_real_tanh: true
fold_batch_norm: false
layer_specific:
  conv1: {weight: {integer_bits: 1, fractional_bits: 3}, bias: {fractional_bits: 8}}
  res1: {input: {integer_bits: 3}}
  out: {enable: false}
""",
        "tables.yaml": """sigmoid_table: {}
tanh_table: {}
softmax_table: {}
use_lut_activations: true
""",
        "off.yaml": "enable_quantization: false\n",
        "bad_mode.yaml": "round_mode: ROUND_UP\n",
        "bad_range.yaml": "bit_range: {min_integer_bits: 5, max_integer_bits: 2}\n",
        "bad_layer.yaml": "layer_specific: {nope: {enable: false}}\n",
        "bad_key.yaml": "default_integer_bit: 3\n",
    }


def checkpoint_seeds(paths):
    out = {}
    for i, p in enumerate(paths):
        b = pathlib.Path(p).read_bytes()
        out[f"raw{i}"] = b"\x00" + b                 # the file as written
        out[f"payload{i}"] = b"\x01" + b[24:]       # the cereal payload, header rebuilt by the target
        out[f"truncated{i}"] = b"\x00" + b[: len(b) // 2]
        flipped = bytearray(b)
        flipped[len(b) // 2] ^= 0x10
        out[f"crc{i}"] = b"\x00" + bytes(flipped)
    if paths:
        out["bad_magic"] = b"\x00KILNCKPX" + bytes(16)
        out["bad_version"] = b"\x00KILNCKPT" + struct.pack("<I", 99) + bytes(12)
    return out


def symreg_data_seeds():
    rows = "".join(f"{i * 0.25},{i % 3},{1 + i % 2},{i * 0.5 + (i % 3)}\n" for i in range(12))
    return {
        "regression.csv": "x0,x1,w,y\n" + rows,
        "regression.csv.gz": gz(("x0,x1,w,y\n" + rows).encode()),
        "headerless.csv": rows,
        "classes.csv": "x0,x1,w,y\n" + "".join(f"{i},{i * i % 5},1,{'ab'[i % 2]}\n" for i in range(10)),
        "one_row.csv": "x0,x1,w,y\n1,2,1,3\n",
        "bad_weight.csv": "x0,x1,w,y\n1,2,nan,3\n2,3,1,4\n",
        "bad_target.csv": "x0,x1,w,y\n1,2,1,high\n",
        "bad_no_features.csv": "y\n1\n2\n",
    }


def symreg_ops_seeds():
    return {
        "default": "+,-,*,/\n\n",
        "all": "+,-,*,/,aq,pow,neg,inv,square,cube,sqrt,exp,log,sin,cos,tan,tanh,abs,gauss,"
               "lut_sin,lut_cos,lut_tan,lut_tanh,lut_exp,lut_log,lut_sqrt,lut_gauss\n"
               "sin=2,exp=3,const=1,var=1\nsin>cos,exp>log\n",
        "spaces_times": " + , x , × ,\n * = 4 \n",
        "bad_op": "+,sine\n\n",
        "bad_empty": ",,\n\n",
        "bad_var": "+,var\n\n",
        "bad_complexity": "+\nsin\n",
        "bad_value": "+\n+=0\n",
        "bad_range": "+\n+=99999999999999999999\n",
        "bad_forbid": "+\n\nsin\n",
    }


def write(target: str, seeds: dict):
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("seed-*"):
        old.unlink()
    for name, data in seeds.items():
        (d / f"seed-{name}").write_bytes(data.encode() if isinstance(data, str) else data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", action="append", default=[], help="a model.ckpt of a tiny run")
    args = ap.parse_args()
    write("csv", csv_seeds())
    write("idx", idx_seeds())
    write("npy", npy_seeds())
    write("config", config_seeds())
    write("quantization", quantization_seeds())
    if args.checkpoint:
        write("checkpoint", checkpoint_seeds(args.checkpoint))
    write("symreg_data", symreg_data_seeds())
    write("symreg_ops", symreg_ops_seeds())


if __name__ == "__main__":
    main()
