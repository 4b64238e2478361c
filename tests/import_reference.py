"""Reference forwards for the import tests, outside kiln: NumPy (float64) on the weights read with h5py
(Keras) or on the initializers read with the onnx package (ONNX). Written from the Keras and ONNX operator
definitions, not from kiln's code.

  keras_forward(json_or_h5, weights_h5, x)   x: [N, ...] channels-last, as Keras takes it
  onnx_forward(path, x)                      x: [N, ...] as the graph's input takes it
"""
import json

import h5py
import numpy as np
import onnx
from onnx import numpy_helper


# ---------------------------------------------------------------- shared math (channels-last, NumPy)
def same_pads(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def conv_nd_last(x, w, strides, pads, depthwise=False):
    """x [N, S..., C]; w [k..., C, M] (depthwise: [k..., C]); pads [(before, after)] per spatial axis."""
    dims = x.ndim - 2
    x = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)])
    k = w.shape[:dims]
    out_sizes = [(x.shape[1 + d] - k[d]) // strides[d] + 1 for d in range(dims)]
    m = x.shape[-1] if depthwise else w.shape[-1]
    y = np.zeros((x.shape[0], *out_sizes, m))
    for idx in np.ndindex(*out_sizes):
        sl = tuple(slice(idx[d] * strides[d], idx[d] * strides[d] + k[d]) for d in range(dims))
        patch = x[(slice(None),) + sl + (slice(None),)]  # [N, k..., C]
        if depthwise:
            y[(slice(None),) + idx] = (patch * w).sum(axis=tuple(range(1, dims + 1)))
        else:
            y[(slice(None),) + idx] = np.tensordot(patch, w, axes=(list(range(1, dims + 2)), list(range(dims + 1))))
    return y


def pool_nd_last(x, pool, strides, pads, is_max):
    """Padded positions are ignored (max: -inf, average: divided by the real inputs)."""
    dims = x.ndim - 2
    valid = np.pad(np.ones(x.shape[1:-1]), list(pads))
    x = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)], constant_values=-np.inf if is_max else 0.0)
    out_sizes = [(x.shape[1 + d] - pool[d]) // strides[d] + 1 for d in range(dims)]
    y = np.zeros((x.shape[0], *out_sizes, x.shape[-1]))
    for idx in np.ndindex(*out_sizes):
        sl = tuple(slice(idx[d] * strides[d], idx[d] * strides[d] + pool[d]) for d in range(dims))
        patch = x[(slice(None),) + sl + (slice(None),)]
        axes = tuple(range(1, dims + 1))
        if is_max:
            y[(slice(None),) + idx] = patch.max(axis=axes)
        else:
            y[(slice(None),) + idx] = patch.sum(axis=axes) / valid[sl].sum()
    return y


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


ACT = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "softmax": softmax,
}


# ---------------------------------------------------------------- Keras
def keras_weights(f, root, name, keras3):
    if keras3:
        if name not in f["layers"]:
            return []
        vars_ = f["layers"][name]["vars"]
        return [np.array(vars_[str(i)], dtype=np.float64) for i in range(len(vars_))]
    g = f[root][name] if root != "/" else f[name]
    return [np.array(g[w.decode() if isinstance(w, bytes) else w], dtype=np.float64) for w in g.attrs["weight_names"]]


def keras_forward(model_path, weights_path, x):
    if model_path.endswith(".h5"):
        f = h5py.File(model_path, "r")
        cfg = f.attrs["model_config"]
        model = json.loads(cfg.decode() if isinstance(cfg, bytes) else cfg)
        root = "model_weights"
    else:
        model = json.load(open(model_path))
        f = h5py.File(weights_path, "r")
        root = "/"
    keras3 = "layer_names" not in f[root].attrs
    layers = model["config"]["layers"] if isinstance(model["config"], dict) else model["config"]
    h = x.astype(np.float64)
    for layer in layers:
        cls, c = layer["class_name"], layer["config"]
        name = c.get("name", layer.get("name"))
        w = [] if cls in ("InputLayer",) else keras_weights(f, root, name, keras3)
        act = c.get("activation", "linear")
        if cls == "InputLayer" or cls == "Dropout":
            continue
        if cls == "Dense":
            h = h @ w[0] + (w[1] if c.get("use_bias", True) else 0)
        elif cls in ("Conv1D", "Conv2D", "DepthwiseConv2D"):
            dims = 1 if cls == "Conv1D" else 2
            k = w[0].shape[:dims]
            s = c.get("strides", [1] * dims)
            pads = [same_pads(h.shape[1 + d], k[d], s[d]) if c["padding"] == "same" else (0, 0) for d in range(dims)]
            kernel = w[0][..., 0] if cls == "DepthwiseConv2D" else w[0]
            h = conv_nd_last(h, kernel, s, pads, depthwise=cls == "DepthwiseConv2D")
            if c.get("use_bias", True):
                h = h + w[1]
        elif cls == "BatchNormalization":
            i = 0
            gamma = w[i] if c.get("scale", True) else 1.0
            i += 1 if c.get("scale", True) else 0
            beta = w[i] if c.get("center", True) else 0.0
            i += 1 if c.get("center", True) else 0
            mean, var = w[i], w[i + 1]
            h = (h - mean) / np.sqrt(var + c["epsilon"]) * gamma + beta
        elif cls == "Activation":
            pass
        elif cls == "ReLU":
            act = "relu"
        elif cls == "LeakyReLU":
            alpha = c.get("alpha", c.get("negative_slope", 0.3))
            h = np.where(h > 0, h, alpha * h)
        elif cls == "Softmax":
            act = "softmax"
        elif cls == "Flatten":
            h = h.reshape(h.shape[0], -1)
        elif cls == "Reshape":
            h = h.reshape((h.shape[0], *c["target_shape"]))
        elif cls in ("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D"):
            dims = 1 if "1D" in cls else 2
            p = c.get("pool_size", [2] * dims)
            s = c.get("strides") or p
            pads = [same_pads(h.shape[1 + d], p[d], s[d]) if c.get("padding") == "same" else (0, 0)
                    for d in range(dims)]
            h = pool_nd_last(h, p, s, pads, cls.startswith("Max"))
        elif cls.startswith("GlobalAveragePooling"):
            h = h.mean(axis=tuple(range(1, h.ndim - 1)))
        else:
            raise ValueError("reference: no " + cls)
        h = ACT[act](h)
    return h


# ---------------------------------------------------------------- ONNX (NCHW, per the operator specs)
def onnx_conv(x, w, b, node):
    a = {at.name: onnx.helper.get_attribute_value(at) for at in node.attribute}
    dims = x.ndim - 2
    k = list(w.shape[2:])
    s = a.get("strides", [1] * dims)
    p = a.get("pads", [0] * (2 * dims))
    group = a.get("group", 1)
    xl = np.moveaxis(x, 1, -1)  # NC... -> N...C
    pads = [(p[d], p[d + dims]) for d in range(dims)]
    if group == 1:
        y = conv_nd_last(xl, np.moveaxis(w, [0, 1], [-1, -2]), s, pads)  # [M, C, k...] -> [k..., C, M]
    else:
        y = conv_nd_last(xl, np.moveaxis(w[:, 0], 0, -1), s, pads, depthwise=True)
    y = np.moveaxis(y, -1, 1)
    return y if b is None else y + b.reshape((1, -1) + (1,) * dims)


def onnx_pool(x, node, is_max):
    a = {at.name: onnx.helper.get_attribute_value(at) for at in node.attribute}
    dims = x.ndim - 2
    k = a["kernel_shape"]
    s = a.get("strides", [1] * dims)
    p = a.get("pads", [0] * (2 * dims))
    y = pool_nd_last(np.moveaxis(x, 1, -1), k, s, [(p[d], p[d + dims]) for d in range(dims)], is_max)
    return np.moveaxis(y, -1, 1)


def onnx_forward(path, x):
    m = onnx.load(path)
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    g = m.graph
    inits = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
    inp = [i for i in g.input if i.name not in inits][0]
    batch = inp.type.tensor_type.shape.dim[0].dim_value
    if batch == 1 and x.shape[0] > 1:  # a graph fixed to one sample (Keras' converter): one sample at a time
        return np.concatenate([onnx_forward(path, x[i:i + 1]) for i in range(x.shape[0])])
    env = dict(inits)
    env[inp.name] = x.astype(np.float64)
    for n in g.node:
        a = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
        i = [env[name] if name else None for name in n.input]
        op = n.op_type
        if op == "Constant":
            y = numpy_helper.to_array(a["value"]).astype(np.float64)
        elif op in ("Identity", "Dropout"):
            y = i[0]
        elif op == "Gemm":
            A = i[0].T if a.get("transA", 0) else i[0]
            B = i[1].T if a.get("transB", 0) else i[1]
            y = a.get("alpha", 1.0) * A @ B + (a.get("beta", 1.0) * i[2] if len(i) > 2 and i[2] is not None else 0)
        elif op == "MatMul":
            y = i[0] @ i[1]
        elif op == "Add":
            y = i[0] + i[1]
        elif op == "Relu":
            y = np.maximum(i[0], 0)
        elif op == "LeakyRelu":
            y = np.where(i[0] > 0, i[0], a.get("alpha", 0.01) * i[0])
        elif op == "Sigmoid":
            y = 1 / (1 + np.exp(-i[0]))
        elif op == "Tanh":
            y = np.tanh(i[0])
        elif op == "Softmax":
            axis = a.get("axis", -1 if opset >= 13 else 1)
            if opset >= 13:
                y = softmax(i[0], axis)
            else:  # coerced to 2-d at axis
                sh = i[0].shape
                y = softmax(i[0].reshape(int(np.prod(sh[:axis])), -1), 1).reshape(sh)
        elif op == "Conv":
            y = onnx_conv(i[0], i[1], i[2] if len(i) > 2 else None, n)
        elif op in ("MaxPool", "AveragePool"):
            y = onnx_pool(i[0], n, op == "MaxPool")
        elif op == "GlobalAveragePool":
            y = i[0].mean(axis=tuple(range(2, i[0].ndim)), keepdims=True)
        elif op == "BatchNormalization":
            sh = (1, -1) + (1,) * (i[0].ndim - 2)
            y = (i[0] - i[3].reshape(sh)) / np.sqrt(i[4].reshape(sh) + a.get("epsilon", 1e-5)) * i[1].reshape(sh) \
                + i[2].reshape(sh)
        elif op == "Flatten":
            axis = a.get("axis", 1)
            y = i[0].reshape(int(np.prod(i[0].shape[:axis])), -1)
        elif op == "Reshape":
            shape = [int(v) for v in (i[1] if len(i) > 1 else a["shape"])]
            shape = [i[0].shape[d] if v == 0 else v for d, v in enumerate(shape)]
            y = i[0].reshape(shape)
        elif op == "Transpose":
            y = np.transpose(i[0], a["perm"])
        else:
            raise ValueError("reference: no " + op)
        env[n.output[0]] = y
    return env[g.output[0].name]
