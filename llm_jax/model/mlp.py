"""Feed-forward block: GELU (GPT-2), SwiGLU (Llama) or squared ReLU."""

import jax
import numpy as np
from flax import nnx

from llm_jax.model import layers
from llm_jax.parallel import constrain


class MLP(nnx.Module):

  def __init__(self, cfg, rngs: nnx.Rngs):
    E, F = cfg.d_model, cfg.mlp_dim
    init, out_init = layers.normal(cfg.init_std), layers.normal(cfg.init_std / np.sqrt(2 * cfg.num_layers))
    self.kind = cfg.mlp
    self.w_in = layers.param(rngs, init, (E, F), ("embed", "mlp"))
    self.w_gate = layers.param(rngs, init, (E, F), ("embed", "mlp")) if cfg.mlp == "swiglu" else None
    self.w_out = layers.param(rngs, out_init, (F, E), ("mlp", "embed"))
    self.b_in = layers.param(rngs, layers.zeros, (F,), ("mlp",)) if cfg.use_bias else None
    self.b_out = layers.param(rngs, layers.zeros, (E,), ("embed",)) if cfg.use_bias else None

  def __call__(self, x_BxTxE):
    h_BxTxF = layers.dense(x_BxTxE, self.w_in, self.b_in, "bte,ef->btf")
    if self.kind == "gelu":
      h_BxTxF = jax.nn.gelu(h_BxTxF, approximate=True)
    elif self.kind == "relu2":
      h_BxTxF = jax.numpy.square(jax.nn.relu(h_BxTxF))
    else:
      gate_BxTxF = layers.dense(x_BxTxE, self.w_gate, None, "bte,ef->btf")
      h_BxTxF = jax.nn.silu(gate_BxTxF) * h_BxTxF
    h_BxTxF = constrain(h_BxTxF, ("batch", "length", "mlp"))
    return layers.dense(h_BxTxF, self.w_out, self.b_out, "btf,fe->bte")
