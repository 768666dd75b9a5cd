"""Parity of lib modules with their torchvision / timm counterparts.

Every test builds one of our modules and its counterpart at the same configuration, copies our state dict
(weights and BatchNorm buffers) into the counterpart through an explicit name map with
``load_state_dict(strict=True)`` (``_common.Pair``), and compares on copies cast to float64 and to float32,
in train and in eval mode: the outputs, the input gradient of ``<y, g>`` for a fixed random ``g``, the
parameter gradients and, after the forward, the BatchNorm running statistics. Tolerances: 1e-10 in float64,
1e-5 in float32 (absolute; the outputs are of order 1), 1e-4 for the float32 parameter gradients (relative:
sums over batch and positions). BatchNorm affine parameters and running statistics are random and the
statistics those of the network's own activations (``_common.calibrate``), so that neither mode is trivial.
Whole networks with CBAM, CA or triplet attention are compared in float64; in float32 their logits differ by
up to ~5e-5, the size of their own float32 rounding error, which a separate test asserts.

Name maps (our key -> theirs):

* SE -> ``timm.layers.SqueezeExcite(C, rd_channels=C // 24)`` and ``torchvision.ops.SqueezeExcitation(C,
  C // 24)``: ``reduce`` -> ``fc1``, ``expand`` -> ``fc2``.
* CBAM -> ``timm.layers.cbam.CbamModule(C, rd_channels=C // 24, mlp_bias=True)`` with the spatial BatchNorm's
  momentum set to 0.01: ``mlp.0`` -> ``channel.fc1``, ``mlp.2`` -> ``channel.fc2``, ``spatial_conv`` ->
  ``spatial.conv.conv`` with the two input channels of the 7x7 weight swapped (timm pools ``[mean; max]``, we
  and the official code ``[max; mean]``), ``spatial_bn`` -> ``spatial.conv.bn``.
* Coordinate attention -> ``timm.layers.coord_attn.CoordAttn(C, rd_channels=max(8, C // 32), bias=True)``:
  ``shared`` -> ``conv1``, ``bn`` -> ``bn1``, ``head_h`` -> ``conv_h``, ``head_w`` -> ``conv_w``.
* Triplet attention -> three timm CBAM ``SpatialAttn`` gates applied to permuted copies of the input (the
  official construction; timm has no triplet module): ``{cw,hc,hw}.conv`` -> ``{cw,hc,hw}.conv.conv``
  (input channels swapped as for CBAM), ``{cw,hc,hw}.bn`` -> ``{cw,hc,hw}.conv.bn`` (momentum 0.01).
* MobileNetV2 -> ``torchvision.models.mobilenet_v2`` with our ``(t, c, n, s)`` rows, no dropout (for CIFAR
  strides the stem stride set to 1) and, for an attention arm, the counterpart above inserted after every
  expanding block's depthwise convolution: ``features.k.expand.j`` -> ``features.k.conv.0.j``,
  ``depthwise`` -> ``conv.e``, ``attention`` -> ``conv.(e+1)``, ``project.0`` / ``project.1`` ->
  ``conv.(e+1+a)`` / ``conv.(e+2+a)`` (``e``, ``a``: 1 if the block has an expansion / attention),
  ``classifier`` -> ``classifier.1``; stem and last convolution keep their names.
* CIFAR ResNet basic block -> ``torchvision.models.resnet.BasicBlock`` (``timm.models.resnet.BasicBlock``
  for the dilated block of the segmentation encoder: torchvision's has no dilation): ``conv1``, ``bn1``,
  ``conv2``, ``bn2`` unchanged, ``shortcut.0`` / ``shortcut.1`` -> ``downsample.0`` / ``downsample.1``;
  ResNet-20 is compared with the same network assembled from torchvision's blocks.

Differences from the counterparts' defaults are asserted, not skipped: timm's default reduction widths and
biases (SE, CBAM, CoordAttn), CBAM's pooling order and BatchNorm momentum, the float32 rounding of whole
networks with attention. GCN, DAGNN, the sandglass block, the strip / pyramid pooling modules and ISDA have
no counterpart in either library.
"""
