"""Independent implementations of every method, written from the papers for the tests (numpy and
``tf.GradientTape`` on a flat graph of the same layers; nothing from cam_widget.methods is used)."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

CLASSES = ("tabby cat", "tiger cat", "tiger", "dog", "coffee mug")


@dataclass
class Net:
    flat: keras.Model
    sequential: keras.Model
    functional: keras.Model
    probe: keras.Model  # flat graph -> {"conv1", "conv2", "conv3", "logits"}
    layers: dict
    skip: bool
    class_names: tuple[str, ...] = CLASSES

    def ingredients(self, x: np.ndarray, layer: str, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(A (h, w, k), G = d logit_c / d A, logits) for one model input ``x`` (h, w, 3)."""
        xt = tf.constant(x[None], tf.float32)
        with tf.GradientTape() as tape:
            out = self.probe(xt)
            score = out["logits"][:, c]
        g = tape.gradient(score, out[layer])
        return out[layer].numpy()[0], g.numpy()[0], out["logits"].numpy()[0]

    def logits_after(self, layer: str, a: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Logits with ``layer``'s output replaced by ``a`` (n, h, w, k): the remaining layers called eagerly."""
        L = self.layers
        n = len(a)
        xt = tf.constant(np.repeat(x[None], n, 0), tf.float32)
        t1 = L["conv1"](L["rescale"](xt))
        if layer == "conv1":
            t1 = a
        p = L["pool"](t1)
        t2 = L["conv2"](p)
        if layer == "conv2":
            t2 = a
        m = L["add"]([p, t2]) if self.skip else t2
        t3 = L["conv3"](m)
        if layer == "conv3":
            t3 = a
        return L["dense"](L["gap"](t3)).numpy()


def build_net(skip: bool = True, seed: int = 0, size: int = 32) -> Net:
    keras.utils.set_random_seed(seed)
    L = {
        "rescale": keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale"),
        "conv1": keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1"),
        "pool": keras.layers.MaxPooling2D(name="pool"),
        "conv2": keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2"),
        "add": keras.layers.Add(name="merge"),
        "conv3": keras.layers.Conv2D(10, 3, padding="same", activation="relu", name="conv3"),
        "gap": keras.layers.GlobalAveragePooling2D(name="gap"),
        "dense": keras.layers.Dense(len(CLASSES), name="logits"),
        "softmax": keras.layers.Softmax(name="probs"),
    }

    def backbone(x):
        t1 = L["conv1"](L["rescale"](x))
        p = L["pool"](t1)
        t2 = L["conv2"](p)
        t3 = L["conv3"](L["add"]([p, t2]) if skip else t2)
        return t1, t2, t3

    inp = keras.Input((size, size, 3))
    t1, t2, t3 = backbone(inp)
    logits = L["dense"](L["gap"](t3))
    flat = keras.Model(inp, L["softmax"](logits), name="flat")
    probe = keras.Model(inp, {"conv1": t1, "conv2": t2, "conv3": t3, "logits": logits})
    rng = np.random.default_rng(seed)
    L["dense"].set_weights([rng.normal(0, 1.0, (10, len(CLASSES))).astype("float32"), rng.normal(0, 0.3, len(CLASSES)).astype("float32")])

    b_in = keras.Input((size, size, 3))
    bb = keras.Model(b_in, backbone(b_in)[2], name="backbone")
    sequential = keras.Sequential([keras.Input((size, size, 3)), bb, L["gap"], L["dense"], L["softmax"]], name="seq")
    f_in = keras.Input((size, size, 3))
    functional = keras.Model(f_in, L["softmax"](L["dense"](L["gap"](bb(f_in)))), name="func")
    return Net(flat, sequential, functional, probe, L, skip)


# ------------------------------------------------------------------ the methods, from the papers


def channel_sum(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    out = np.zeros(a.shape[:2])
    for k in range(a.shape[2]):
        out += w[k] * a[:, :, k]
    return out


def gradcam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    h, w, _ = a.shape
    alpha = g.sum(axis=(0, 1)) / (h * w)  # Selvaraju eq. 1: (1/Z) sum_ij dY/dA_ij
    return channel_sum(a, alpha)


def gradcam_pp(a: np.ndarray, g: np.ndarray, normalise: bool = False) -> np.ndarray:
    """Chattopadhay eq. 19 (exponential score): alpha = g^2 / (2 g^2 + sum_ab A_ab g^3); w = sum alpha relu(g)."""
    a64, g64 = a.astype(np.float64), g.astype(np.float64)
    w = np.zeros(a.shape[2])
    for k in range(a.shape[2]):
        gk, s = g64[:, :, k], a64[:, :, k].sum()
        alpha = np.zeros_like(gk)
        for (i, j), v in np.ndenumerate(gk):
            den = 2 * v**2 + s * v**3
            if v != 0 and den != 0:
                alpha[i, j] = v**2 / den
        if normalise and alpha.sum() != 0:
            alpha = alpha / alpha.sum()
        w[k] = (alpha * np.maximum(gk, 0)).sum()
    return channel_sum(a64, w)


def xgradcam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    w = np.zeros(a.shape[2])
    for k in range(a.shape[2]):
        s = a[:, :, k].astype(np.float64).sum()
        w[k] = (a[:, :, k] / s * g[:, :, k]).sum() if s != 0 else 0.0
    return channel_sum(a, w)


def hirescam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    return (a.astype(np.float64) * g).sum(axis=2)


def layercam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    return (a.astype(np.float64) * np.maximum(g, 0)).sum(axis=2)


def first_component(m: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Centred (h*w, k) -> projection on the top right-singular vector; sign: positive correlation with reference."""
    h, w, k = m.shape
    x = m.reshape(-1, k).astype(np.float64)
    x = x - x.mean(axis=0)
    # the top eigenvector of the covariance, by power iteration (independent of an SVD routine)
    cov = x.T @ x
    v = np.ones(k) / np.sqrt(k)
    for _ in range(2000):
        v = cov @ v
        v /= np.linalg.norm(v)
    p = x @ v
    if np.corrcoef(p, reference.reshape(-1))[0, 1] < 0:
        p = -p
    return p.reshape(h, w)


def eigencam(a: np.ndarray) -> np.ndarray:
    return first_component(a, a.mean(axis=2))


def scorecam(
    net: Net, x: np.ndarray, a: np.ndarray, c: int, channels: list[int], align_corners: bool = False
) -> np.ndarray:
    """Wang et al.: mask_k = minmax(up(A_k)); w_k = softmax(f(x * mask_k))_c; map = sum w_k A_k."""
    from scipy.ndimage import zoom

    size = x.shape[:2]
    w = np.zeros(a.shape[2])
    for k in channels:
        if align_corners:  # as tf-keras-vis upsamples
            up = zoom(a[:, :, k], (size[0] / a.shape[0], size[1] / a.shape[1]), order=1, mode="nearest")
        else:
            up = tf.image.resize(a[None, :, :, k : k + 1], size, method="bilinear").numpy()[0, :, :, 0]
        lo, hi = up.min(), up.max()
        mask = (up - lo) / (hi - lo) if hi > lo else np.zeros_like(up)
        probs = net.flat(tf.constant((x * mask[:, :, None])[None], tf.float32)).numpy()[0]
        w[k] = probs[c]
    return channel_sum(a, w)


def ablationcam(net: Net, x: np.ndarray, layer: str, a: np.ndarray, c: int, y: float) -> np.ndarray:
    """Desai & Ramaswamy: w_k = (y_c - y_c^k) / y_c, with |y_c| (the engine's documented choice for y_c < 0)."""
    k = a.shape[2]
    ablated = np.repeat(a[None], k, 0)
    for i in range(k):
        ablated[i, :, :, i] = 0
    yk = net.logits_after(layer, tf.constant(ablated), x)[:, c]
    return channel_sum(a, (y - yk) / abs(y))
