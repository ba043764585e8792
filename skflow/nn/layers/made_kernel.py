"""The MADE network inside the fused pass, shared by MADE-based layer kernels.

A MADE-based layer (affine or spline) differs from another only in
what it does with the MADE's outputs.  :class:`MADEKernel` holds the
parameter layout (each linear layer one ``[W^T ; b]`` block with its mask
``[mask^T ; 1]``), the network's forward and backward pass in the driver's
transposed layout, and the block-sparse scoring of the network; a subclass
adds the transform arithmetic.

With a context (``made.context_features > 0``) the first block is
``[W_x^T ; W_c^T ; b]``: the inputs' product and the context's (whose
activation carries the ones row) are two matrix products.
"""

from __future__ import annotations

import torch

from .kernel import FUSED_ACTIVATIONS, LayerKernel, activation_, activation_backward, block

_BLOCK_ROWS = 64


def _sorted_by(counts):
    return torch.sort(counts, stable=True).indices


def block_sparse(w_t, mask, rows, cols, block_rows=_BLOCK_ROWS, sigmoid_inputs=False, scale=1.0):
    """One MADE layer prepared for scoring, as row blocks ``(start, stop,
    prefix, weight)``: ``[b | W]`` with its rows and columns permuted (by
    ``rows`` and ``cols``, bias column first) so that each row's unmasked
    inputs are a prefix of the columns, and each block's product uses only
    the ``prefix`` columns its rows need.  A MADE's masks are about half
    zeros; with units sorted by degree they are a staircase, and the blocks
    skip most of the zero half (wide layers; narrow ones stay one block).
    ``w_t`` is the masked ``[W^T ; b]`` block; ``mask``, ``rows`` and
    ``cols`` are on the CPU.

    ``sigmoid_inputs``: the inputs arrive as ``s = (1 + h) / 2`` instead of
    ``h`` (so ``W h + b = 2 W s + (b - W 1)``); ``scale`` multiplies the
    outputs.  Together they fold ``tanh(a) = 2 sigmoid(2a) - 1`` into the
    products, leaving one sigmoid pass per hidden layer (:func:`_fold_tanh`)."""
    perm = torch.cat([torch.tensor([w_t.shape[0] - 1]), cols])  # bias first
    w = w_t[perm.to(w_t.device)][:, rows.to(w_t.device)].t().contiguous()
    if sigmoid_inputs or scale != 1.0:
        w = _fold_tanh(w, sigmoid_inputs, scale)
    used = mask[perm][:, rows].t() != 0
    last = torch.where(used, torch.arange(1, used.shape[1] + 1), 0).amax(1)
    step = block_rows if len(rows) >= 2 * block_rows else len(rows)
    blocks = []
    for start in range(0, len(rows), step):
        stop = min(start + step, len(rows))
        prefix = int(last[start:stop].max())
        blocks.append((start, stop, prefix, w[start:stop, :prefix]))
    return blocks


def _fold_tanh(w, sigmoid_inputs, scale):
    """``[b | W]`` (bias column first) for inputs ``s = (1 + h) / 2``, times ``scale``.

    In float64: the bias absorbs ``- W 1``, a sum over up to a few hundred
    weights."""
    w64 = w.double()
    if sigmoid_inputs:
        w64[:, 0] -= w64[:, 1:].sum(1)
        w64[:, 1:] *= 2.0
    return w64.mul_(scale).to(w.dtype)


class MADEKernel(LayerKernel):
    """Parameter layout and network pass of a layer's MADE (``layer.made``)."""

    def __init__(self, made):
        self.made = made
        layers = made.layers
        self.params = [layer.weight for layer in layers] + [layer.bias for layer in layers]
        self.masks = tuple(torch.cat([layer.mask.t(), layer.mask.new_ones(1, layer.mask.shape[0])], 0)
                           for layer in layers)
        # Masks are fixed at construction; version-keyed (not copied) in the plan's key.
        self._mask_key = tuple((layer.mask.data_ptr(), layer.mask._version) for layer in layers)
        self.d = made.n_inputs
        self.n_context = made.context_features
        self.activation = made.activation

    # -- parameter layout ------------------------------------------------
    def slots(self):
        return [(m.shape, m) for m in self.masks]

    def pack(self, params):
        k = len(self.masks)
        return [block(w, b).mul_(m) for w, b, m in zip(params[:k], params[k:], self.masks)]

    def param_views(self, blocks):
        return [b[:-1].t() for b in blocks] + [b[-1] for b in blocks]

    def unpack_grads(self, block_grads):
        return [g[:-1].t() for g in block_grads] + [g[-1] for g in block_grads]

    def signature(self):
        return (type(self).__name__, self.activation, self.d, self.n_context,
                tuple(m.shape for m in self.masks), self._mask_key)

    # -- training pass ---------------------------------------------------
    def hidden_sizes(self) -> list[int]:
        return [m.shape[1] for m in self.masks[:-1]]

    def made_forward(self, state, h, blocks):
        """The network's output ``(n_outputs, n)`` for the activation ``h``,
        and what :meth:`made_backward` needs."""
        d = self.d
        inputs, hidden = [h[0]], []
        for k, w in enumerate(blocks[:-1]):
            a, a_body = state.take()
            if k == 0 and self.n_context:
                torch.mm(w[:d].t(), h[1], out=a_body).addmm_(w[d:].t(), state.context)
            else:
                torch.mm(w.t(), inputs[-1], out=a_body)
            activation_(a_body, self.activation)
            inputs.append(a)
            hidden.append(a_body)
        return torch.mm(blocks[-1].t(), inputs[-1]), (inputs, hidden, h[1])

    def made_backward(self, state, saved, blocks, grad, grad_blocks, grad_x):
        """From ``grad`` at the network's output, write the block gradients
        and add the input gradient to ``grad_x`` (in place; returned)."""
        inputs, hidden, x_body = saved
        d = self.d
        for k in range(len(blocks) - 1, -1, -1):
            # The block's gradient, bias row included (the inputs' ones row).
            if k == 0 and self.n_context:
                torch.mm(x_body, grad.t(), out=grad_blocks[0][:d])
                torch.mm(state.context, grad.t(), out=grad_blocks[0][d:])
            else:
                torch.mm(inputs[k], grad.t(), out=grad_blocks[k])
            if k > 0:
                grad = activation_backward(torch.mm(blocks[k][:-1], grad), hidden[k - 1], self.activation)
            else:
                if state.need_input_grad:
                    grad_x = grad_x.addmm_(blocks[0][:d], grad)
                if state.grad_context is not None:
                    state.grad_context.addmm_(blocks[0][d:-1], grad)
        return grad_x

    # -- scoring ---------------------------------------------------------
    def eval_reorder(self, order: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The feature order this layer scores in (:meth:`eval_order`) and the
        row gather that brings activations held in ``order`` into it (None
        where they already are)."""
        new_order = self.eval_order()
        gather = None if torch.equal(new_order, order) else torch.argsort(order)[new_order].to(device)
        return new_order, gather

    @staticmethod
    def reordered(gather, h, other):
        """``(h, other)`` with ``h``'s rows gathered into the layer's order (buffers swapped)."""
        if gather is None:
            return h, other
        torch.index_select(h[1:], 0, gather, out=other[1:])
        return other, h

    def eval_order(self) -> torch.Tensor:
        """Features by degree (how many last-layer hidden units their first output sees)."""
        return _sorted_by((self.masks[-1].cpu()[:-1, : self.d] != 0).sum(0))

    def made_eval_prepare(self, blocks, feature_order, out_block, out_rows):
        """The network as block-sparse products, inputs in ``feature_order``,
        outputs in ``out_rows`` order from ``out_block`` (the last block,
        possibly rescaled by the caller); returns ``(layers, context_weight)``."""
        masks = [m.cpu() for m in self.masks]
        d = self.d
        # tanh hidden layers hold sigmoid(2a) (one pass; see made_eval): each
        # hidden layer's product is doubled, and each product after one reads s.
        tanh = self.activation == "tanh"
        hidden_scale = 2.0 if tanh else 1.0
        cols, layers, ctx_w = feature_order, [], None
        for k, (w_t, mask) in enumerate(zip(blocks[:-1], masks[:-1])):
            if k == 0 and self.n_context:
                rows = _sorted_by((mask[:d] != 0).sum(0))
                # bias and context weights as one (units, 1 + c) product, bias column first
                ctx_w = torch.cat([w_t[-1:], w_t[d:-1]], 0)[:, rows.to(w_t.device)].t().contiguous()
                ctx_w = ctx_w * hidden_scale
                w_t = torch.cat([w_t[:d], torch.zeros_like(w_t[:1])], 0)
                mask = torch.cat([mask[:d], mask[-1:]], 0)
            else:
                rows = _sorted_by((mask[:-1] != 0).sum(0))  # hidden units by degree
            layers.append(block_sparse(w_t, mask, rows, cols, sigmoid_inputs=tanh and k > 0,
                                       scale=hidden_scale))
            cols = rows
        layers.append(block_sparse(out_block, masks[-1], out_rows, cols, sigmoid_inputs=tanh))
        return layers, ctx_w

    @staticmethod
    def made_eval_buffers(layers, ctx_w):
        buffers = [((k, blocks[-1][1]), blocks[-1][1]) for k, blocks in enumerate(layers[:-1])]
        if ctx_w is not None:
            buffers.append((("context part", ctx_w.shape[0]), ctx_w.shape[0]))
        return buffers

    def made_eval(self, layers, ctx_w, h, view, m, context, out):
        """The network's outputs for one chunk ``h`` (ones row first) into ``out``."""
        a = h
        for k, blocks in enumerate(layers[:-1]):
            width = blocks[-1][1]
            dest = view((k, width), width, m)
            if k == 0 and ctx_w is not None:
                part = view(("context part", width), width, m)[1:]
                torch.mm(ctx_w, context, out=part)
                for r0, r1, prefix, w in blocks:
                    torch.addmm(part[r0:r1], w, a[:prefix], out=dest[1 + r0 : 1 + r1])
            else:
                for r0, r1, prefix, w in blocks:
                    torch.mm(w, a[:prefix], out=dest[1 + r0 : 1 + r1])
            if self.activation == "tanh":
                dest[1:].sigmoid_()  # = (1 + tanh) / 2 of the unfolded product (made_eval_prepare)
            else:
                activation_(dest[1:], self.activation)
            a = dest
        for r0, r1, prefix, w in layers[-1]:
            torch.mm(w, a[:prefix], out=out[r0:r1])


class FusedMADELayer:
    """For layer modules built on ``self.made``: :meth:`fused_kernel` builds
    ``kernel_class(self)`` once per settings and masks, and pickles leave it out."""

    kernel_class: type = MADEKernel

    def kernel_settings(self) -> tuple:
        """The layer's settings the kernel depends on (beyond the MADE's masks)."""
        return ()

    def fused_kernel(self, n_rows: int = 2):
        """This layer's kernel, or None if its activation has no fused form."""
        made = self.made
        if made.activation not in FUSED_ACTIVATIONS:
            return None
        masks = tuple(layer.mask for layer in made.layers)
        key = (self.kernel_settings(), masks[0].device, masks[0].dtype,
               tuple((m.data_ptr(), m._version) for m in masks))
        cached = self.__dict__.get("_kernel_cache")
        if cached is None or cached[0] != key:
            cached = (key, self.kernel_class(self))
            self.__dict__["_kernel_cache"] = cached
        return cached[1]

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_kernel_cache", None)
        return state
