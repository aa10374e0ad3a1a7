"""Checks for the exercises at the end of each notebook.

Each check_... takes the student's answer (a number, a function, a model) and says whether it is
right; when it is not, it says what went wrong and gives a hint, never the answer. The right
answers are worked out in notebooks/solutions/.
"""
import math
import warnings
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

from .models import ConvBlock, ModularConvNet, conv_output_size, count_parameters
from .training import lr_per_epoch
from .transfer import trainable_layers


@dataclass
class Feedback:
    """A check's verdict: true when the answer is right; a notebook shows the message."""
    correct: bool
    message: str

    def __bool__(self):
        return self.correct

    def __repr__(self):
        return self.message


NOT_ANSWERED = Feedback(False, "Not answered yet: replace None with your answer.")


def _right(why):
    return Feedback(True, f"Correct. {why}")


def _wrong(what, hint):
    return Feedback(False, f"Not quite: {what}\nHint: {hint}")


def _check_number(answer, expected, known_mistakes, hint, why):
    """Compare a number; `known_mistakes` maps the wrong value of a typical slip to its cause."""
    if answer is None:
        return NOT_ANSWERED
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return _wrong(f"{answer!r} is not a number.", hint)
    if math.isclose(value, expected, rel_tol=1e-6):
        return _right(why)
    for mistake, cause in known_mistakes.items():
        if math.isclose(value, mistake, rel_tol=1e-6):
            return _wrong(f"{answer} {cause}", hint)
    return _wrong(f"{answer} is not it.", hint)


def _side_after_blocks(image_size, n_blocks):
    """Height (= width) after n blocks of a padded 3x3 convolution and a 2x2 max-pool."""
    for _ in range(n_blocks):
        image_size = conv_output_size(image_size, kernel_size=3, padding=1) // 2
    return image_size


# 01 · shapes

def check_in_features_64(answer):
    """fc1's in_features when the lesson's two conv blocks get 64x64 images."""
    side = _side_after_blocks(64, 2)
    return _check_number(
        answer, side * side * 64,
        {8 * 8 * 64: "is the value for 32x32 images.",
         32 * 32 * 64: "counts only one max-pooling; each of the two blocks has one.",
         64 * 64 * 64: "forgets the max-pooling: each block halves the height and the width."},
        "follow the side: conv (padded, keeps it), pool (halves it), twice; then side * side * "
        "channels.", "Twice the side, four times the features.")


def check_in_features_three_blocks(answer):
    """fc1's in_features for 32x32 images with a 3rd block: Conv2d(64, 128, 3, padding=1), pool."""
    side = _side_after_blocks(32, 3)
    return _check_number(
        answer, side * side * 128,
        {8 * 8 * 64: "is the lesson's two-block value.",
         side * side * 64: "uses 64 channels; the third convolution outputs 128.",
         8 * 8 * 128: "forgets the third block's max-pooling."},
        "one more halving of the side, and the channels of the last convolution.",
        "Each block halves the side; the last convolution sets the channels.")


def check_last_batch_size(answer):
    """The size of the last training batch with batch_size=128 (50,000 images, drop_last=False)."""
    n, batch = 50_000, 128
    return _check_number(
        answer, n % batch,
        {50_000 % 64: "is the last batch for batch_size=64.",
         n // batch: "is the number of full batches, not the size of the last one.",
         -(-n // batch): "is the number of batches, not the size of the last one.",
         0: "would mean 50,000 is a multiple of 128; it is not.",
         batch: "would be a full batch."},
        "the remainder of a division: the % operator.", "The last batch holds the remainder.")


# 02 · training

def check_optimizer_steps(answer):
    """How many optimizer steps the baseline takes: 14 epochs, batch 64, 50,000 images."""
    full, last = divmod(50_000, 64)
    per_epoch = full + (1 if last else 0)
    return _check_number(
        answer, 14 * per_epoch,
        {14 * full: "leaves out the last, smaller batch: it is a step too.",
         per_epoch: "is one epoch; the baseline trains 14.",
         14 * 50_000: "counts images; the optimizer steps once per batch."},
        "one step per batch (the small last one included), for every epoch.",
        "One step per batch, the last small one included.")


def check_last_batch_weight(answer):
    """Test set of 10,000 in batches of 64. If the test loss were the plain mean of the per-batch
    mean losses, how many times more would one image of the last batch count than one image of a
    full batch?"""
    last = 10_000 % 64
    return _check_number(
        answer, 64 / last,
        {1: "would hold if all batches were full; the last one is not.",
         last / 64: "is upside down: the fewer images share a batch's weight, the more each "
                    "counts."},
        "every batch's mean gets the same weight; how many images share it in a full batch, and in "
        "the last?", "That is why test() sums the losses (reduction='sum') and divides once.")


def check_accuracy_function(accuracy):
    """A function accuracy(output, target) -> percent correct; output: log-probabilities."""
    if accuracy is None:
        return NOT_ANSWERED
    if not callable(accuracy):
        return _wrong("the answer should be a function: def accuracy(output, target): ...",
                      "take the argmax of output over the classes and compare it with target.")
    generator = torch.Generator().manual_seed(0)
    output = torch.randn(50, 10, generator=generator).log_softmax(dim=1)
    target = torch.randint(0, 10, (50,), generator=generator)
    target[:20] = output[:20].argmax(dim=1)  # at least 20 of 50 right
    expected = 100.0 * (output.argmax(dim=1) == target).float().mean().item()
    try:
        result = accuracy(output, target)
        if result is None:
            return Feedback(False, "Not answered yet: accuracy(...) returns None; write its body.")
        result = float(result)
    except Exception as err:  # the student's code: any error is feedback
        return _wrong(f"calling accuracy(output, target) raised {type(err).__name__}: {err}",
                      "output has shape [N, 10], target [N]; argmax over dim=1 gives [N].")
    if math.isclose(result, expected / 100, rel_tol=1e-4):
        return _wrong("the result is a fraction between 0 and 1.", "the lesson reports percent.")
    if math.isclose(result, expected * len(target) / 100, rel_tol=1e-4):
        return _wrong("the result is a count of right answers.", "divide by the number of images.")
    if not math.isclose(result, expected, rel_tol=1e-4):
        return _wrong(f"on a test batch it returned {result:.2f}, not the percent correct.",
                      "the predicted class is the argmax over dim=1 (the classes), not dim=0.")
    return _right("argmax over the classes, compared with the labels, in percent.")


# 03 · dropout

def check_dropout_scale(answer):
    """In training mode, nn.Dropout(p=0.6) multiplies each value it keeps by what factor?"""
    p = 0.6
    return _check_number(
        answer, 1 / (1 - p),
        {1 - p: "is the probability of keeping a value, not the factor.",
         p: "is the probability of zeroing a value.",
         1: "would make the mean smaller in training than in evaluation.",
         1 / p: "divides by p; think about the fraction that is kept."},
        "the factor keeps the mean of the output equal to the mean of the input; dropout_demo(0.6) "
        "measures it.", "Scaling by 1 / (1 - p) keeps the mean, so eval mode needs no scaling.")


def check_train_accuracy_with_dropout(answer):
    """Measuring the dropout network's training accuracy with dropout still on (no model.eval()):
    does the number come out higher or lower than with model.eval()? Answer "higher" or "lower"."""
    if answer is None:
        return NOT_ANSWERED
    word = str(answer).strip().lower()
    if word in ("lower", "low", "down", "smaller", "less"):
        return _right("With dropout on, each prediction uses a random, weakened part of the "
                      "network.")
    if word in ("higher", "high", "up", "larger", "more"):
        return _wrong("dropout helps against overfitting, but not a single prediction.",
                      "with p = 0.6, more than half of each convolution's outputs are zeroed.")
    return _wrong(f"{answer!r} is neither 'higher' nor 'lower'.", "answer 'higher' or 'lower'.")


# 04 · modular code

def check_conv_block_parameters(answer):
    """The number of parameters of ConvBlock(3, 32) (a 3x3 convolution and dropout)."""
    weights = 3 * 32 * 3 * 3
    return _check_number(
        answer, count_parameters(ConvBlock(3, 32)),
        {weights: "counts the weights only; each output channel has a bias too.",
         3 * 32 * 3 * 3 + 3: "adds a bias per input channel; the biases belong to the outputs.",
         3 * 32: "forgets the 3x3 kernel: one weight per pixel of it."},
        "in_channels * out_channels * kernel height * kernel width weights, plus the biases; "
        "dropout has no parameters.", "Dropout and max-pooling have no parameters.")


def check_log_softmax_rows(log_softmax_rows):
    """A function, made with functools.partial, that does F.log_softmax over each row."""
    if log_softmax_rows is None:
        return NOT_ANSWERED
    if not callable(log_softmax_rows):
        return _wrong("the answer should be a function.", "partial(F.log_softmax, ...) is one.")
    x = torch.randn(4, 10, generator=torch.Generator().manual_seed(0))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y = log_softmax_rows(x)
    except Exception as err:  # the student's code: any error is feedback
        return _wrong(f"calling it on a [4, 10] tensor raised {type(err).__name__}: {err}",
                      "it should take one argument, the tensor.")
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        return _wrong("it does not return a tensor of the input's shape.",
                      "F.log_softmax keeps the shape.")
    if any("Implicit dimension" in str(w.message) for w in caught):
        return _wrong("it leaves dim out, so PyTorch guesses it (and warns).", "say which dim.")
    if torch.allclose(y, F.log_softmax(x, dim=0)):
        return _wrong("it normalizes each column (dim=0): across the images of a batch.",
                      "each row is one image's 10 scores.")
    if not torch.allclose(y, F.log_softmax(x, dim=1)):
        return _wrong("its output is not the log-softmax of each row.", "fix the dim argument.")
    if not isinstance(log_softmax_rows, partial):
        return _wrong("the output is right, but the function is not made with functools.partial.",
                      "partial(function, keyword=value) returns a new function.")
    return _right("partial fixed dim, so the function takes the tensor alone.")


def check_modular_in_features(answer):
    """in_features of the first linear layer of ModularConvNet(channels=(16, 32, 64, 128))."""
    model = ModularConvNet(channels=(16, 32, 64, 128))
    expected = model.linear_part[0].linear_layer.in_features
    return _check_number(
        answer, expected,
        {8 * 8 * 128: "halves 32 only twice; there are four blocks.",
         2 * 2 * 16: "uses the first block's channels; the last block's count.",
         4 * 4 * 128: "halves 32 three times; there are four blocks."},
        "four blocks, four halvings of 32; the channels of the last block.",
        "Four halvings: 32 -> 16 -> 8 -> 4 -> 2.")


# 05 · learning-rate decay

def check_lr_at_epoch_15(answer):
    """The learning rate of epoch 15 with Adam(lr=1e-3) and StepLR(step_size=7, gamma=0.1) stepped
    after every epoch (epochs numbered from 1)."""
    rates = lr_per_epoch("step", epochs=15, lr=1e-3, step_size=7, gamma=0.1)
    return _check_number(
        answer, rates[14],
        {1e-3: "is the starting rate; StepLR has already cut it.",
         1e-4: "counts one cut; by epoch 15 there have been more.",
         1e-6: "counts one cut too many: the third comes after epoch 21."},
        "StepLR multiplies the rate by gamma after every step_size epochs: count the cuts before "
        "epoch 15 starts.",
        "Cuts after epochs 7 and 14.")


def check_halving_scheduler(make_scheduler):
    """A function make_scheduler(optimizer) returning a scheduler that halves the learning rate
    every 5 epochs (stepped once per epoch)."""
    if make_scheduler is None:
        return NOT_ANSWERED
    if not callable(make_scheduler):
        return _wrong("the answer should be a function of the optimizer.",
                      "def make_scheduler(optimizer): return optim.lr_scheduler....")
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    try:
        scheduler = make_scheduler(optimizer)
        if scheduler is None:
            return Feedback(False, "Not answered yet: make_scheduler returns None; return a "
                                   "scheduler.")
        rates = []
        for _ in range(20):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
    except Exception as err:  # the student's code: any error is feedback
        return _wrong(f"building or stepping it raised {type(err).__name__}: {err}",
                      "make_scheduler(optimizer) should return a scheduler of that optimizer.")
    expected = [0.5 ** (epoch // 5) for epoch in range(20)]
    if all(math.isclose(r, e) for r, e in zip(rates, expected)):
        return _right("The rate halves after epochs 5, 10 and 15.")
    cuts = [i + 1 for i in range(19) if not math.isclose(rates[i], rates[i + 1])]
    factors = {round(rates[i + 1] / rates[i], 4) for i in range(19) if rates[i]} - {1.0}
    return _wrong(f"over 20 epochs the rate changes after epochs {cuts}, by factors "
                  f"{sorted(factors)}.",
                  "StepLR's step_size is the number of epochs between cuts; gamma multiplies the "
                  "rate.")


# 06 · data augmentation

def check_crop_positions(answer):
    """How many different 32x32 crops can RandomCrop(32, padding=4) cut from one padded image?"""
    per_axis = 32 + 2 * 4 - 32 + 1
    return _check_number(
        answer, per_axis ** 2,
        {8 * 8: "counts offsets 0 to 7; the last one, 8, is a position too.",
         per_axis: "counts one direction; the crop moves up-down and left-right.",
         4 * 4: "counts the padding of one side only."},
        "the padded image is 40x40; a 32-wide window fits at offsets 0, 1, ... in each direction.",
        "Offsets 0 to 8 across, times 0 to 8 down.")


def check_train_transform(transform):
    """The training transform: random flip, RandomCrop(32, padding=4), then the lesson's ToTensor
    and Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))."""
    if transform is None:
        return NOT_ANSWERED
    steps = transform.transforms if isinstance(transform, transforms.Compose) else None
    if steps is None:
        return _wrong("the answer should be a transforms.Compose([...]).",
                      "list the steps in the order they run.")
    kinds = [type(step) for step in steps]
    for needed in (transforms.RandomHorizontalFlip, transforms.RandomCrop, transforms.ToTensor,
                   transforms.Normalize):
        if needed not in kinds:
            return _wrong(f"there is no {needed.__name__} step.", "four steps in all.")
    crop = steps[kinds.index(transforms.RandomCrop)]
    if tuple(crop.size) != (32, 32) or crop.padding not in (4, (4, 4), [4], (4,), [4, 4]):
        return _wrong(f"the crop is size {tuple(crop.size)} with padding {crop.padding}.",
                      "pad 4 pixels on each side, then cut back to 32x32.")
    if kinds.index(transforms.Normalize) < kinds.index(transforms.ToTensor):
        return _wrong("Normalize comes before ToTensor.", "Normalize works on tensors.")
    if max(kinds.index(transforms.RandomCrop), kinds.index(transforms.RandomHorizontalFlip)) > \
            kinds.index(transforms.ToTensor):
        return _wrong("a random step comes after ToTensor.",
                      "augment the image first, then convert it, as the lesson does.")
    normalize = steps[kinds.index(transforms.Normalize)]
    if list(normalize.mean) != [0.5] * 3 or list(normalize.std) != [0.5] * 3:
        return _wrong("Normalize does not use the lesson's mean and std.",
                      "the test set is normalized with 0.5 and 0.5: train and test must match.")
    out = transform(Image.new("RGB", (32, 32), (255, 0, 0)))
    if tuple(out.shape) != (3, 32, 32):
        return _wrong(f"a 32x32 image comes out as {list(out.shape)}.",
                      "the output must be [3, 32, 32].")
    return _right("Augment the PIL image, then convert and normalize it as the test set is.")


def check_distinct_versions(answer):
    """How many different images can flip + RandomCrop(32, padding=4) make from one image
    (counting every crop position and both flips)?"""
    crops = (32 + 2 * 4 - 32 + 1) ** 2
    return _check_number(
        answer, crops * 2,
        {crops: "counts the crops only; each can be flipped or not.",
         crops + 2: "adds the flips; each crop can be flipped or not, so multiply."},
        "the number of crops times the number of flip choices.", "Crops times flips.")


# 07 · transfer learning

def check_head_parameters(answer):
    """Trainable parameters of VGG16 when everything is frozen but a new Linear(4096, 10) head."""
    head = nn.Linear(4096, 10)
    return _check_number(
        answer, count_parameters(head),
        {4096 * 10: "counts the weights only; each output has a bias.",
         4096 * 5 + 5: "is the 5-class head of the notebook.",
         4096 * 1000 + 1000: "is ImageNet's 1,000-class layer, which the new one replaces."},
        "in_features * out_features weights plus out_features biases.",
        "One weight per input per class, plus a bias per class.")


def check_block4_only(model):
    """A VGG16 in which only the three convolutions of block 4 and classifier[6] train."""
    if model is None:
        return NOT_ANSWERED
    wanted = ["features.17", "features.19", "features.21", "classifier.6"]
    try:
        training = trainable_layers(model)
    except Exception as err:  # not a model
        return _wrong(f"could not read its layers ({type(err).__name__}).", "pass the VGG16 model.")
    if training == wanted:
        return _right("Block 4's three convolutions and the new head train; all else is frozen.")
    extra = [name for name in training if name not in wanted]
    frozen_convs = sum(name not in training for name in wanted[:3])
    parts = []
    if extra:
        parts.append(f"these layers train but should be frozen: {', '.join(extra)}")
    if frozen_convs:
        parts.append(f"{frozen_convs} of block 4's 3 convolutions are frozen")
    if "classifier.6" not in training:
        parts.append("the new head is frozen")
    return _wrong("; ".join(parts) + ".",
                  "freeze everything first, then unfreeze block 4: vgg16_conv_blocks(model) lists "
                  "the indices of each block (block 4 is the fourth), and the new head must train.")
