"""VGG16 frozen in the ways notebook 07's figures and slider show: the first blocks of `features`
frozen, the last ones and the classifier trainable or not, and a new last layer.

Notebook 07 writes freezing out in plain PyTorch first (`requires_grad = False`, a new
`nn.Linear`); this helper repeats those steps with options. It lives here, apart from the modules
students read, because its loop over the blocks is close to the answer of 07's exercise 1.
"""

import torch.nn as nn

from ..transfer import set_trainable, vgg16_conv_blocks


def prepare_vgg16(model, n_classes=5, unfreeze_blocks=0, freeze_classifier=False):
    """Freeze `features` except its last `unfreeze_blocks` conv blocks, replace classifier[6] with
    a new Linear(4096, n_classes); freeze_classifier=True also freezes classifier[0] and [3]."""
    set_trainable(model.features, False)
    blocks = vgg16_conv_blocks(model)
    for block in blocks[len(blocks) - unfreeze_blocks :]:
        for index in block:
            set_trainable(model.features[index], True)
    set_trainable(model.classifier, not freeze_classifier)
    if model.classifier[6].out_features != n_classes:
        model.classifier[6] = nn.Linear(model.classifier[6].in_features, n_classes)
    set_trainable(model.classifier[6], True)  # a new layer is always trained
    return model
