"""Where a trained CNN fails, and what it learned: plain PyTorch, one short function per question.

Loaders yield (images normalized to [-1, 1], [N, 3, 32, 32]; labels [N]), as in data.py.
The plots for these results are in support/plots.py.
"""

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from .models import trace_shapes


@contextlib.contextmanager
def evaluating(model):
    """model.eval() and no gradients inside the block; the model's mode comes back after it,
    even after an error."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def predict(model, loader, device):
    """Run `model` over the whole loader. Returns (probs [N, 10], predictions [N], targets [N]),
    all on the CPU. probs are softmax probabilities (the lesson's models return log-probabilities;
    softmax turns logits and log-probabilities alike into probabilities)."""
    probs, targets = [], []
    with evaluating(model):  # dropout off: we want the model's real answers
        for images, labels in loader:
            probs.append(torch.softmax(model(images.to(device)), dim=1).cpu())
            targets.append(labels.cpu())
    probs = torch.cat(probs)
    return probs, probs.argmax(dim=1), torch.cat(targets)


def misclassified(model, loader, device, n=16, per_class=None):
    """The first `n` images the model gets wrong, in the loader's order, with at most `per_class`
    of each true class (None: no limit; CIFAR-10's test folders are sorted by class, so without a
    limit the first mistakes are all airplanes).

    Returns a dict of CPU tensors: "images" (normalized, [k, 3, H, W]), "targets" (true labels),
    "predictions", "confidences" (softmax probability of the predicted class) and "indices"
    (position in the loader's order), with k <= n.
    Pass an unshuffled loader (e.g. TensorLoader(test_set, shuffle=False)): a shuffled one shows
    different images on every call, and its indices mean nothing.
    """
    found = {"images": [], "targets": [], "predictions": [], "confidences": [], "indices": []}
    taken = [0] * 1000  # mistakes kept per true class
    seen = 0
    with evaluating(model):
        for images, labels in loader:
            probs = torch.softmax(model(images.to(device)), dim=1).cpu()
            confidences, predictions = probs.max(dim=1)
            labels = labels.cpu()
            for i in (predictions != labels).nonzero().flatten().tolist():
                label = int(labels[i])
                if len(found["indices"]) == n or (per_class and taken[label] >= per_class):
                    continue
                taken[label] += 1
                found["images"].append(images[i].cpu())
                found["targets"].append(label)
                found["predictions"].append(int(predictions[i]))
                found["confidences"].append(float(confidences[i]))
                found["indices"].append(seen + i)
            seen += len(labels)
            if len(found["indices"]) == n:
                break
    images = torch.stack(found.pop("images")) if found["indices"] else torch.empty(0, 3, 32, 32)
    return {"images": images, **{key: torch.tensor(values) for key, values in found.items()}}


def confusion_matrix(predictions, targets, n_classes=10):
    """Counts as a LongTensor [n_classes, n_classes]: rows = true class, columns = predicted class.

    Cell (t, p) counts the images of class t predicted as p; the diagonal holds the correct ones.
    Each (t, p) pair gets the number t * n_classes + p, and bincount counts those numbers.
    """
    pairs = targets.long().cpu() * n_classes + predictions.long().cpu()
    return torch.bincount(pairs, minlength=n_classes**2).reshape(n_classes, n_classes)


def per_class_accuracy(matrix):
    """Percent correct per true class: diagonal / row sums * 100 (nan for a class without
    images)."""
    matrix = torch.as_tensor(matrix).double()
    return matrix.diagonal() / matrix.sum(dim=1) * 100  # 0 / 0 gives nan, no crash


def most_confused_pairs(matrix, classes, k=3, symmetric=False):
    """The k largest off-diagonal cells, largest first (cells with count 0 are left out).

    symmetric=False: (true name, predicted name, count, percent of that true class's images).
    symmetric=True: unordered pairs, both directions summed: (name a, name b, count a->b plus b->a,
    percent of the images of both classes).
    """
    counts = torch.as_tensor(matrix).long().cpu()
    totals = counts.sum(dim=1)
    if symmetric:
        counts = (counts + counts.T).triu(diagonal=1)  # each unordered pair once, above diagonal
    else:
        counts = counts - counts.diag().diag()  # zero the diagonal
    values, flat = counts.flatten().sort(descending=True, stable=True)
    pairs = []
    for count, index in zip(values[:k].tolist(), flat[:k].tolist()):
        if count == 0:
            break
        a, b = divmod(index, counts.shape[1])
        total = totals[a] + totals[b] if symmetric else totals[a]
        pairs.append((classes[a], classes[b], count, 100 * count / total.item()))
    return pairs


def calibration(probs, targets, bins=10):
    """How far the confidence (the largest softmax probability) is from the accuracy.

    The predictions are put in `bins` equal confidence bins, (0, 1/bins], (1/bins, 2/bins], ...,
    and in each bin the mean confidence is compared with the fraction that is right. A calibrated
    network is right 80% of the time when it says 0.8; an overconfident one less often.
    Returns a dict of CPU tensors [bins]: "edges" (bins + 1 bin edges), "confidence" (mean
    confidence), "accuracy" (fraction right, 0 to 1), "count" (predictions in the bin); the two
    means are nan in an empty bin. And "ece", the expected calibration error: the gap
    |accuracy - confidence| of each bin weighted by its share of the predictions (0 = calibrated).
    """
    probs = torch.as_tensor(probs).detach().cpu().double()
    targets = torch.as_tensor(targets).cpu().long()
    if probs.ndim != 2 or len(probs) != len(targets) or len(probs) == 0:
        raise ValueError(
            f"calibration needs probs [N, classes] and targets [N] with N > 0, "
            f"got {tuple(probs.shape)} and {tuple(targets.shape)}"
        )
    confidence, predictions = probs.max(dim=1)
    correct = (predictions == targets).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    which = torch.bucketize(confidence, edges[1:-1])  # bin i: edges[i] < confidence <= edges[i+1]
    count = torch.bincount(which, minlength=bins)
    confidence_sum = torch.bincount(which, weights=confidence, minlength=bins)
    correct_sum = torch.bincount(which, weights=correct, minlength=bins)
    return {
        "edges": edges,
        "confidence": confidence_sum / count,  # 0 / 0 gives nan in an empty bin
        "accuracy": correct_sum / count,
        "count": count,
        # sum over bins of count/N * |accuracy - confidence| = sum |correct - confidence sums| / N
        "ece": ((correct_sum - confidence_sum).abs().sum() / len(probs)).item(),
    }


def first_layer_filters(model):
    """conv1's weights ready for imshow: [32, 3, 3, 3] as (filter, row, column, RGB), each filter
    min-max scaled to [0, 1] on its own (the raw weights are small and of both signs)."""
    w = model.conv1.weight.detach().cpu().float()
    low = w.amin(dim=(1, 2, 3), keepdim=True)
    high = w.amax(dim=(1, 2, 3), keepdim=True)
    w = (w - low) / (high - low).clamp_min(1e-12)  # a constant filter becomes all zeros
    return w.permute(0, 2, 3, 1)  # channels last


def feature_maps(model, image):
    """What conv1 and conv2 output for one normalized image [3, 32, 32], after ReLU and before
    max-pooling: {"conv1": [32, 32, 32], "conv2": [64, 16, 16]} (CPU tensors).

    The layers are called one by one, as in ConvNet.forward; dropout (DropoutConvNet) is off in
    eval mode, so it is left out and both networks work.
    """
    device = next(model.parameters()).device
    with evaluating(model):
        x = image.unsqueeze(0).to(device)  # a batch of one
        conv1 = F.relu(model.conv1(x))
        conv2 = F.relu(model.conv2(F.max_pool2d(conv1, 2)))
    return {"conv1": conv1[0].cpu(), "conv2": conv2[0].cpu()}


def convnet_layers(model, image_size=32):
    """The steps that shape the receptive field of a ConvNet, in forward order:
    (name, kernel_size, stride, padding) for each conv and pool.

    F.max_pool2d is called inside forward, so it is not a module: the order and the pools come from
    models.trace_shapes (a pool's kernel and stride = how much it shrinks the map), each conv's
    numbers from the module itself. Stops at the flatten (view).
    """
    steps = trace_shapes(
        model, torch.zeros(1, 3, image_size, image_size, device=next(model.parameters()).device)
    )
    layers, side = [], image_size
    for name, shape in steps[1:]:
        if len(shape) != 4:  # flattened: the convolutional part is over
            break
        module = getattr(model, name, None)
        if isinstance(module, nn.Conv2d):
            layers.append((name, module.kernel_size[0], module.stride[0], module.padding[0]))
        elif name.startswith("max_pool"):
            factor = side // shape[-1]
            layers.append((name, factor, factor, 0))
        side = shape[-1]
    return layers


def receptive_field(layers):
    """Receptive field after each step of `layers` ((name, kernel_size, stride, padding) tuples).

    Returns one dict per step: "name", "size" (r: the window side, in input pixels, one position
    sees), "jump" (j: how many input pixels apart two neighbouring positions are) and "start"
    (input pixel where position 0's window begins; negative = in the zero padding). Recurrence:
        r_out = r_in + (k - 1) * j_in,   j_out = j_in * s,   start_out = start_in - p * j_in
    starting from the input itself: r = 1, j = 1, start = 0.
    """
    r, j, start, rows = 1, 1, 0, []
    for name, k, s, p in layers:
        r, j, start = r + (k - 1) * j, j * s, start - p * j
        rows.append({"name": name, "size": r, "jump": j, "start": start})
    return rows


def input_window(position, layers, image_size=32):
    """The input pixels that position (i, j) of the last layer's map sees, as
    (row_start, row_end, col_start, col_end) with end excluded: image[:, r0:r1, c0:c1].

    Near the border part of the window lies in the zero padding, which holds no image, so the
    window is clipped to the image: a corner position sees fewer pixels than the receptive field.
    """
    last = receptive_field(layers)[-1]
    window = []
    for index in position:
        first = last["start"] + index * last["jump"]
        window += [max(first, 0), min(first + last["size"], image_size)]
    return tuple(window)


def top_classes(model, image, transform, device, classes, k=3):
    """The k most likely classes of one PIL image of any size: resized to 32x32, then the
    training images' transform (ToTensor + Normalize), as the network saw its training images.
    Returns [(class name, probability), ...], most likely first."""
    x = transform(image.convert("RGB").resize((32, 32)))
    with evaluating(model):
        probabilities = torch.softmax(model(x.unsqueeze(0).to(device)), dim=1)[0]
    ranked, order = probabilities.sort(descending=True)  # most likely first
    return [(classes[i], p) for p, i in zip(ranked[:k].tolist(), order[:k].tolist())]
