"""Writes the import test's inputs into OUTDIR: for the hls4ml example models and for small models this
script builds (every supported Keras layer and ONNX operator, in the files' real layouts: Keras 2 JSON +
weights .h5, a Keras 3 config with a .weights.h5, a whole-model .h5, ONNX from PyTorch-style NCHW and
Keras-style NHWC graphs), 1,000 random inputs and the reference outputs of import_reference.py; and broken or
unsupported files. OUTDIR/cases.tsv lists them, one per line:

  ok <TAB> NAME <TAB> INPUTS.npy <TAB> EXPECTED.npy <TAB> import flags...
  err <TAB> NAME <TAB> REGEX the one-line error must match <TAB> import flags...

  /usr/bin/python3 tests/import_cases.py MODELS_DIR OUTDIR
"""
import json
import os
import sys

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from import_reference import keras_forward, onnx_forward  # noqa: E402

MODELS, OUT = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(17)
cases = []
N = 1000


def check_case(name, x, y, flags):
    xp, yp = os.path.join(OUT, name + "_x.npy"), os.path.join(OUT, name + "_y.npy")
    np.save(xp, x.astype(np.float32))
    np.save(yp, y.astype(np.float64))
    cases.append("\t".join(["ok", name, xp, yp] + flags))


def err_case(name, pattern, flags):
    cases.append("\t".join(["err", name, pattern] + flags))


def p(name):
    return os.path.join(OUT, name)


# ------------------------------------------------------------------ Keras files, written as Keras writes them
def layer(cls, name, inbound=None, **config):
    entry = {"class_name": cls, "name": name, "config": dict(name=name, **config)}
    if inbound is not None:
        entry["inbound_nodes"] = [[[inbound, 0, 0, {}]]] if inbound else []
    return entry


def save_keras2(json_path, h5_path, model, weights):
    """weights: {layer: [(short name, array)]}; every layer of the model gets a group, as Keras does."""
    with open(json_path, "w") as f:
        json.dump(model, f)
    with h5py.File(h5_path, "w") as f:
        write_weight_groups(f, model, weights)


def write_weight_groups(g, model, weights):
    names = [lay["config"]["name"] for lay in model["config"]["layers"]]
    g.attrs["layer_names"] = np.array([n.encode() for n in names])
    for n in names:
        grp = g.create_group(n)
        ws = weights.get(n, [])
        grp.attrs["weight_names"] = np.array([f"{n}/{w}:0".encode() for w, _ in ws]) if ws else np.array([])
        for w, a in ws:
            grp.create_dataset(f"{n}/{w}:0", data=a.astype(np.float32))


def rand(*shape, scale=0.5):
    return rng.normal(0, scale, shape)


def bn_weights(c, center=True, scale=True):
    w = []
    if scale:
        w.append(("gamma", rng.uniform(0.5, 1.5, c)))
    if center:
        w.append(("beta", rand(c)))
    return w + [("moving_mean", rand(c)), ("moving_variance", rng.uniform(0.5, 2.0, c))]


# A functional Keras 2 CNN: strided same conv, BatchNorm (axis written as 3, Keras 2 style), ReLU layer, depthwise conv, both poolings with same
# and valid padding, a 1x1 conv, global average pooling.
def keras_cnn2d():
    L = [layer("InputLayer", "input_1", inbound="", batch_input_shape=[None, 9, 9, 3], dtype="float32"),
         layer("Conv2D", "conv1", "input_1", filters=4, kernel_size=[3, 3], strides=[2, 2], padding="same",
               activation="linear", use_bias=True, dilation_rate=[1, 1], data_format="channels_last"),
         layer("BatchNormalization", "bn1", "conv1", axis=3, epsilon=1e-3, momentum=0.99, center=True, scale=True),
         layer("ReLU", "relu1", "bn1", max_value=None, negative_slope=0.0, threshold=0.0),
         layer("DepthwiseConv2D", "dw", "relu1", kernel_size=[3, 3], strides=[1, 1], padding="same",
               depth_multiplier=1, activation="relu", use_bias=False),
         layer("AveragePooling2D", "avg", "dw", pool_size=[2, 2], strides=[2, 2], padding="same"),
         layer("MaxPooling2D", "max", "avg", pool_size=[2, 2], strides=[1, 1], padding="valid"),
         layer("Conv2D", "conv2", "max", filters=6, kernel_size=[1, 1], strides=[1, 1], padding="valid",
               activation="tanh", use_bias=True),
         layer("GlobalAveragePooling2D", "gap", "conv2"),
         layer("Dense", "out", "gap", units=5, activation="softmax", use_bias=True)]
    model = {"class_name": "Model", "keras_version": "2.4.0", "backend": "tensorflow",
             "config": {"name": "cnn", "layers": L, "input_layers": [["input_1", 0, 0]],
                        "output_layers": [["out", 0, 0]]}}
    W = {"conv1": [("kernel", rand(3, 3, 3, 4)), ("bias", rand(4))], "bn1": bn_weights(4),
         "dw": [("depthwise_kernel", rand(3, 3, 4, 1))], "conv2": [("kernel", rand(1, 1, 4, 6)), ("bias", rand(6))],
         "out": [("kernel", rand(6, 5)), ("bias", rand(5))]}
    save_keras2(p("cnn2d.json"), p("cnn2d_weights.h5"), model, W)
    x = rng.normal(0, 1, (N, 9, 9, 3))
    check_case("keras_cnn2d", x, keras_forward(p("cnn2d.json"), p("cnn2d_weights.h5"), x),
               ["--keras", p("cnn2d.json"), "--weights", p("cnn2d_weights.h5")])
    return model, W


# A Keras 3 Sequential config (module/registered_name, batch_shape) with a .weights.h5 (layers/NAME/vars/i).
def keras3_seq1d():
    def k3(cls, name, **config):
        return {"module": "keras.layers", "class_name": cls, "registered_name": None,
                "config": dict(name=name, trainable=True, dtype="float32", **config)}
    L = [k3("InputLayer", "input_layer", batch_shape=[None, 12, 2]),
         k3("Conv1D", "c1", filters=3, kernel_size=[3], strides=[1], padding="valid", activation="relu",
            use_bias=True, dilation_rate=[1], groups=1, data_format="channels_last"),
         k3("MaxPooling1D", "mp", pool_size=[2], strides=[2], padding="valid", data_format="channels_last"),
         k3("Conv1D", "c2", filters=4, kernel_size=[2], strides=[1], padding="same", activation="linear",
            use_bias=True, dilation_rate=[1], groups=1),
         k3("LeakyReLU", "lrelu", negative_slope=0.2),
         k3("AveragePooling1D", "ap", pool_size=[2], strides=[1], padding="valid"),
         k3("Flatten", "flat", data_format="channels_last"),
         k3("Dropout", "drop", rate=0.5),
         k3("Reshape", "resh", target_shape=[4, 4]),
         k3("Dense", "d1", units=3, activation="sigmoid", use_bias=True),
         k3("Flatten", "flat2"),
         k3("Dense", "d2", units=4, activation="linear", use_bias=False),
         k3("BatchNormalization", "bn", axis=-1, epsilon=1e-3, momentum=0.99, center=False, scale=True),
         k3("Softmax", "sm", axis=-1)]
    model = {"module": "keras", "class_name": "Sequential", "config": {"name": "seq", "layers": L}}
    W = {"c1": [rand(3, 2, 3), rand(3)], "c2": [rand(2, 3, 4), rand(4)], "d1": [rand(4, 3), rand(3)],
         "d2": [rand(12, 4)], "bn": [a for _, a in bn_weights(4, center=False)]}
    with open(p("seq1d.json"), "w") as f:
        json.dump(model, f)
    with h5py.File(p("seq1d.weights.h5"), "w") as f:
        for lname, ws in W.items():
            g = f.create_group(f"layers/{lname}/vars")
            for i, a in enumerate(ws):
                g.create_dataset(str(i), data=a.astype(np.float32))
    x = rng.normal(0, 1, (N, 12, 2))
    check_case("keras3_seq1d", x, keras_forward(p("seq1d.json"), p("seq1d.weights.h5"), x),
               ["--keras", p("seq1d.json"), "--weights", p("seq1d.weights.h5")])


# A whole-model .h5 (model.save): the config in the model_config attribute, weights in model_weights/.
def keras_whole_h5():
    L = [layer("Dense", "fc1", units=8, activation="linear", use_bias=True, batch_input_shape=[None, 6]),
         layer("Activation", "act1", activation="tanh"),
         layer("Dense", "fc2", units=8, activation="linear", use_bias=True),
         layer("ReLU", "relu2"),
         layer("Dense", "fc3", units=3, activation="sigmoid", use_bias=True)]
    model = {"class_name": "Sequential", "config": {"name": "mlp", "layers": L}}
    W = {"fc1": [("kernel", rand(6, 8)), ("bias", rand(8))], "fc2": [("kernel", rand(8, 8)), ("bias", rand(8))],
         "fc3": [("kernel", rand(8, 3)), ("bias", rand(3))]}
    with h5py.File(p("whole.h5"), "w") as f:
        f.attrs["model_config"] = json.dumps(model)
        f.attrs["keras_version"] = "2.4.0"
        write_weight_groups(f.create_group("model_weights"), model, W)
    x = rng.normal(0, 1, (N, 6))
    check_case("keras_whole_h5", x, keras_forward(p("whole.h5"), None, x), ["--keras", p("whole.h5")])


# ------------------------------------------------------------------ ONNX graphs
def init(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def save_onnx(name, nodes, inits, in_shape, out_shape, opset):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="kiln-test")
    m.ir_version = 7
    onnx.save(m, p(name + ".onnx"))
    return p(name + ".onnx")


# PyTorch-style NCHW: Conv + BatchNorm + Relu + MaxPool, a strided conv with asymmetric (same) pads, a
# channels-first Flatten, BatchNorm on the flat features, Gemm (transB), Tanh, MatMul + Add, Softmax (opset 13).
def onnx_cnn_pytorch():
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c1", "g", "be", "mu", "var"], ["n1"], name="bn1", epsilon=1e-5),
             helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", kernel_shape=[3, 3], strides=[2, 2],
                              pads=[0, 0, 1, 1]),
             helper.make_node("Flatten", ["c2"], ["f0"], name="flat", axis=1),
             helper.make_node("BatchNormalization", ["f0", "g2", "be2", "mu2", "var2"], ["f"], name="bn2"),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["g3"], name="fc1", transB=1, alpha=0.5, beta=2.0),
             helper.make_node("Tanh", ["g3"], ["t3"], name="tanh"),
             helper.make_node("MatMul", ["t3", "w4"], ["m4"], name="fc2"),
             helper.make_node("Add", ["m4", "b4"], ["a4"], name="fc2_bias"),
             helper.make_node("Softmax", ["a4"], ["y"], name="softmax", axis=-1)]
    inits = [init("w1", rand(4, 3, 3, 3)), init("b1", rand(4)), init("g", rng.uniform(0.5, 1.5, 4)),
             init("be", rand(4)), init("mu", rand(4)), init("var", rng.uniform(0.5, 2, 4)),
             init("w2", rand(6, 4, 3, 3)), init("b2", rand(6)), init("g2", rng.uniform(0.5, 1.5, 24)),
             init("be2", rand(24)), init("mu2", rand(24)), init("var2", rng.uniform(0.5, 2, 24)),
             init("w3", rand(10, 24)), init("b3", rand(10)),
             init("w4", rand(10, 5)), init("b4", rand(5))]
    path = save_onnx("cnn_pytorch", nodes, inits, ["N", 3, 8, 8], ["N", 5], 13)
    x = rng.normal(0, 1, (N, 3, 8, 8))
    check_case("onnx_cnn_pytorch", x, onnx_forward(path, x), ["--onnx", path])


# NCL 1-d: Conv, AveragePool with pads excluded from the mean, GlobalAveragePool, Flatten, Gemm, Sigmoid
# (opset 11).
def onnx_conv1d():
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[5], pads=[2, 2]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("AveragePool", ["r1"], ["a1"], kernel_shape=[3], strides=[1], pads=[1, 1],
                              count_include_pad=0),
             helper.make_node("Conv", ["a1", "w2"], ["c2"], kernel_shape=[3]),
             helper.make_node("GlobalAveragePool", ["c2"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["l"]),
             helper.make_node("Sigmoid", ["l"], ["y"])]
    inits = [init("w1", rand(3, 2, 5)), init("b1", rand(3)), init("w2", rand(4, 3, 3)),
             init("w3", rand(4, 1)), init("b3", rand(1))]
    path = save_onnx("conv1d", nodes, inits, ["N", 2, 16], ["N", 1], 11)
    x = rng.normal(0, 1, (N, 2, 16))
    check_case("onnx_conv1d", x, onnx_forward(path, x), ["--onnx", path])


# Keras-converter style NHWC with Transposes around a depthwise Conv (group = C), LeakyRelu, Reshape from an
# initializer, Softmax over axis 1 (opset 9), batch fixed to 1.
def onnx_keras_style():
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t", "w1", "b1"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2),
             helper.make_node("LeakyRelu", ["c"], ["l"], alpha=0.1),
             helper.make_node("Transpose", ["l"], ["u"], perm=[0, 2, 3, 1]),
             helper.make_node("Reshape", ["u", "shape"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["g"]),
             helper.make_node("Softmax", ["g"], ["y"], axis=1)]
    inits = [init("w1", rand(2, 1, 3, 3)), init("b1", rand(2)), numpy_helper.from_array(np.array([0, -1], np.int64), "shape"),
             init("w2", rand(72, 4)), init("b2", rand(4))]
    path = save_onnx("keras_style", nodes, inits, [1, 6, 6, 2], [1, 4], 9)
    x = rng.normal(0, 1, (N, 6, 6, 2))
    check_case("onnx_keras_style", x, onnx_forward(path, x), ["--onnx", path])


# Opset 17: a Constant node as the bias, Identity, Dropout.
def onnx_opset17():
    nodes = [helper.make_node("Constant", [], ["bias"], value=init("v", rand(3))),
             helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Add", ["bias", "m"], ["a"]),
             helper.make_node("Identity", ["a"], ["i"]),
             helper.make_node("Dropout", ["i"], ["d"]),
             helper.make_node("Relu", ["d"], ["y"])]
    path = save_onnx("opset17", nodes, [init("w", rand(5, 3))], ["N", 5], ["N", 3], 17)
    x = rng.normal(0, 1, (N, 5))
    check_case("onnx_opset17", x, onnx_forward(path, x), ["--onnx", path])


# ------------------------------------------------------------------ the hls4ml example models
def shared_models():
    for stem, shape in [("KERAS_3layer", (16,)), ("KERAS_3layer_batch_norm", (16,)), ("KERAS_conv1d_small", (10, 4))]:
        x = rng.normal(0, 1, (N, *shape))
        j, w = os.path.join(MODELS, stem + ".json"), os.path.join(MODELS, stem + "_weights.h5")
        check_case(stem, x, keras_forward(j, w, x), ["--keras", j, "--weights", w])
    j = os.path.join(MODELS, "KERAS_3layer.json")
    w = os.path.join(MODELS, "KERAS_3layer_70pruned_retrained_weights.h5")
    x = rng.normal(0, 1, (N, 16))
    check_case("KERAS_3layer_70pruned", x, keras_forward(j, w, x), ["--keras", j, "--weights", w])
    for stem, shape in [("three_layer_keras", (16,)), ("three_layer_pytorch", (16,)), ("two_layer_pytorch", (10,)),
                        ("conv2d_small_keras", (8, 8, 1))]:
        path = os.path.join(MODELS, stem + ".onnx")
        x = rng.normal(0, 1, (N, *shape))
        check_case(stem, x, onnx_forward(path, x), ["--onnx", path])


# ------------------------------------------------------------------ unsupported and broken input
def errors(cnn_model, cnn_weights):
    def keras_variant(name, edit):
        m = json.loads(json.dumps(cnn_model))
        edit(m["config"]["layers"])
        save_keras2(p(name + ".json"), p(name + ".h5"), m, cnn_weights)
        return ["--keras", p(name + ".json"), "--weights", p(name + ".h5")]

    def replace(i, entry):
        def edit(layers):
            layers[i] = entry
        return edit

    err_case("keras LSTM layer", r"lstm_1' \(LSTM\): kiln cannot import this layer type",
             keras_variant("lstm", replace(7, layer("LSTM", "lstm_1", "max", units=4))))
    err_case("keras custom layer", r"my_layer' \(MyCustomLayer\)",
             keras_variant("custom", replace(7, layer("MyCustomLayer", "my_layer", "max"))))
    err_case("keras unsupported activation", r"layer 'out' \(Dense\): activation 'elu'",
             keras_variant("elu", lambda L: L[9]["config"].update(activation="elu")))
    err_case("keras BatchNormalization over another axis", r"layer 'bn1' \(BatchNormalization\): axis 1",
             keras_variant("bn_axis", lambda L: L[2]["config"].update(axis=1)))
    err_case("keras dilated conv", r"layer 'conv1' \(Conv2D\): dilation_rate",
             keras_variant("dilated", lambda L: L[1]["config"].update(dilation_rate=[2, 2])))
    err_case("keras branch", r"layer 'conv2' \(Conv2D\): takes input from \(dw\)",
             keras_variant("branch", lambda L: L[7].update(inbound_nodes=[[["dw", 0, 0, {}]]])))
    w = {k: v for k, v in cnn_weights.items() if k != "conv2"}
    m = json.loads(json.dumps(cnn_model))
    with h5py.File(p("missing.h5"), "w") as f:
        m2 = json.loads(json.dumps(m))
        m2["config"]["layers"] = [lay for lay in m2["config"]["layers"] if lay["config"]["name"] != "conv2"]
        write_weight_groups(f, m2, w)
    err_case("keras weights missing a layer", r"no weights for layer 'conv2' \(Conv2D\)",
             ["--keras", p("cnn2d.json"), "--weights", p("missing.h5")])
    with open(p("not_h5.h5"), "w") as f:
        f.write("this is text, not HDF5\n")
    err_case("keras weights not HDF5", r"not_h5.h5: not an HDF5 file", ["--keras", p("cnn2d.json"), "--weights", p("not_h5.h5")])
    data = open(p("cnn2d_weights.h5"), "rb").read()
    with open(p("truncated.h5"), "wb") as f:
        f.write(data[: len(data) // 3])
    err_case("keras weights truncated", r"truncated.h5: (corrupt|not an) HDF5",
             ["--keras", p("cnn2d.json"), "--weights", p("truncated.h5")])
    with open(p("bad.json"), "w") as f:
        f.write('{"class_name": "Model", "config": {"layers": [')
    err_case("keras JSON corrupt", r"bad.json: not a Keras model JSON", ["--keras", p("bad.json"), "--weights", p("cnn2d_weights.h5")])

    def onnx_variant(name, nodes, inits, opset=13, in_shape=("N", 4), out_shape=("N", 3)):
        return ["--onnx", save_onnx(name, nodes, inits, list(in_shape), list(out_shape), opset)]

    mlp = [helper.make_node("Gemm", ["x", "w", "b"], ["g"], name="fc"), helper.make_node("Relu", ["g"], ["y"])]
    mlp_inits = [init("w", rand(4, 3)), init("b", rand(3))]
    err_case("onnx unsupported operator", r"node 'erf_1' \(Erf\): kiln cannot import this operator",
             onnx_variant("erf", [mlp[0], helper.make_node("Erf", ["g"], ["y"], name="erf_1")], mlp_inits))
    err_case("onnx opset 18", r"opset 18 is outside the range kiln imports \(9-17\)", onnx_variant("opset18", mlp, mlp_inits, 18))
    err_case("onnx opset 8", r"opset 8 is outside", onnx_variant("opset8", mlp, mlp_inits, 8))
    err_case("onnx residual add", r"node 'res' \(Add\): adds two computed tensors",
             onnx_variant("residual", [helper.make_node("Gemm", ["x", "w", "b"], ["g"], name="fc"),
                                       helper.make_node("Relu", ["g"], ["r"], name="relu"),
                                       helper.make_node("Add", ["g", "r"], ["y"], name="res")], mlp_inits))
    err_case("onnx custom domain", r"node 'cust' \(MyOp\): operator domain 'com.example'",
             onnx_variant("domain", [mlp[0], helper.make_node("MyOp", ["g"], ["y"], name="cust", domain="com.example")],
                          mlp_inits))
    err_case("onnx conv pads", r"node 'pc' \(Conv\): pads \[2, 0, 0, 0\] are neither valid nor same",
             onnx_variant("pads", [helper.make_node("Conv", ["x", "cw"], ["y"], name="pc", kernel_shape=[3, 3],
                                                    pads=[2, 0, 0, 0])],
                          [init("cw", rand(2, 1, 3, 3))], in_shape=("N", 1, 6, 6), out_shape=("N", 2, 6, 4)))
    good = open(p("opset17.onnx"), "rb").read()
    with open(p("truncated.onnx"), "wb") as f:
        f.write(good[: len(good) // 2])
    err_case("onnx truncated", r"truncated.onnx: not an ONNX model", ["--onnx", p("truncated.onnx")])
    err_case("onnx missing file", r"cannot open '.*nothing.onnx'", ["--onnx", p("nothing.onnx")])


os.makedirs(OUT, exist_ok=True)
shared_models()
cnn = keras_cnn2d()
keras3_seq1d()
keras_whole_h5()
onnx_cnn_pytorch()
onnx_conv1d()
onnx_keras_style()
onnx_opset17()
errors(*cnn)
with open(os.path.join(OUT, "cases.tsv"), "w") as f:
    f.write("\n".join(cases) + "\n")
print(f"{len(cases)} cases in {OUT}/cases.tsv")
