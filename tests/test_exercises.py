"""The exercise checks accept the right answer, explain wrong ones, and never print the answer."""
import re
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import optim
from torchvision import models, transforms

from lesson_utils import exercises as ex
from lesson_utils.transfer import set_trainable

# (check, the right answer worked out here by hand, wrong answers)
NUMBER_EXERCISES = [
    (ex.check_in_features_64, 16 * 16 * 64, [4096, 64 * 64 * 64, 12345]),
    (ex.check_in_features_three_blocks, 4 * 4 * 128, [4096, 1024, 8192]),
    (ex.check_last_batch_size, 80, [16, 390, 391, 0]),
    (ex.check_optimizer_steps, 782 * 14, [781 * 14, 782, 700_000]),
    (ex.check_last_batch_weight, 4, [1, 0.25, 2]),
    (ex.check_dropout_scale, 2.5, [0.4, 0.6, 1]),
    (ex.check_conv_block_parameters, 3 * 32 * 9 + 32, [864, 867, 96]),
    (ex.check_modular_in_features, 2 * 2 * 128, [8192, 64, 2048]),
    (ex.check_lr_at_epoch_15, 1e-5, [1e-3, 1e-4, 1e-6]),
    (ex.check_crop_positions, 81, [64, 9, 16]),
    (ex.check_distinct_versions, 162, [81, 83, 2]),
    (ex.check_head_parameters, 4096 * 10 + 10, [40960, 20485, 4097000]),
]


def shows_answer(message, answer):
    """Whether a message contains the answer as a number (so '80' in '8080' does not count)."""
    numbers = {float(n) for n in re.findall(r"\d+(?:\.\d+)?(?:e-?\d+)?", message)}
    return float(answer) in numbers


@pytest.mark.parametrize("check, answer, wrong", NUMBER_EXERCISES, ids=lambda v: getattr(v, "__name__", ""))
def test_number_checks(check, answer, wrong):
    assert check(answer) and check(answer).message.startswith("Correct")
    assert check(str(answer))  # an answer typed as text counts too
    assert not check(None) and "Not answered" in check(None).message
    assert not check("eighty") and "not a number" in check("eighty").message
    for value in wrong:
        feedback = check(value)
        assert not feedback and "Hint:" in feedback.message
        assert not shows_answer(feedback.message, answer), feedback.message


def test_known_mistakes_get_their_own_explanation():
    assert "32x32" in ex.check_in_features_64(4096).message
    assert "bias" in ex.check_conv_block_parameters(864).message
    assert "last batch for batch_size=64" in ex.check_last_batch_size(16).message
    assert "is not it" in ex.check_in_features_64(12345).message


def test_feedback_shows_its_message_in_a_notebook():
    feedback = ex.check_crop_positions(64)
    assert repr(feedback) == feedback.message and feedback.message.startswith("Not quite")


def test_check_accuracy_function():
    def right(output, target):
        return 100.0 * (output.argmax(dim=1) == target).float().mean()

    assert ex.check_accuracy_function(right)
    assert "fraction" in ex.check_accuracy_function(lambda o, t: right(o, t) / 100).message
    assert "count" in ex.check_accuracy_function(lambda o, t: (o.argmax(1) == t).sum()).message
    wrong_dim = ex.check_accuracy_function(lambda o, t: 100.0 * (o.argmax(0)[:1] == t).float().mean())
    assert not wrong_dim and "dim=1" in wrong_dim.message
    assert "raised" in ex.check_accuracy_function(lambda o, t: o.nonexistent).message
    assert not ex.check_accuracy_function(None) and not ex.check_accuracy_function(3)


def test_check_train_accuracy_with_dropout():
    assert ex.check_train_accuracy_with_dropout("lower")
    assert ex.check_train_accuracy_with_dropout(" Lower ")
    assert not ex.check_train_accuracy_with_dropout("higher")
    assert "neither" in ex.check_train_accuracy_with_dropout("same").message


def test_check_log_softmax_rows():
    assert ex.check_log_softmax_rows(partial(F.log_softmax, dim=1))
    assert "dim=0" in ex.check_log_softmax_rows(partial(F.log_softmax, dim=0)).message
    lam = ex.check_log_softmax_rows(lambda x: F.log_softmax(x, dim=1))
    assert not lam and "partial" in lam.message  # right output, but not what the exercise practises
    assert not ex.check_log_softmax_rows(partial(F.softmax, dim=1))
    assert "leaves dim out" in ex.check_log_softmax_rows(F.log_softmax).message
    assert not ex.check_log_softmax_rows("F.log_softmax")


def test_check_halving_scheduler():
    assert ex.check_halving_scheduler(lambda o: optim.lr_scheduler.StepLR(o, step_size=5, gamma=0.5))
    lesson = ex.check_halving_scheduler(lambda o: optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.1))
    assert not lesson and "[7, 14]" in lesson.message
    assert "raised" in ex.check_halving_scheduler(lambda o: optim.lr_scheduler.StepLR(o)).message


def lesson_train_transform(**crop):
    crop = crop or {"padding": 4}
    return transforms.Compose([transforms.RandomHorizontalFlip(), transforms.RandomCrop(32, **crop),
                               transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])


def test_check_train_transform():
    assert ex.check_train_transform(lesson_train_transform())
    assert "padding" in ex.check_train_transform(lesson_train_transform(padding=2)).message
    no_flip = transforms.Compose(lesson_train_transform().transforms[1:])
    assert "RandomHorizontalFlip" in ex.check_train_transform(no_flip).message
    steps = lesson_train_transform().transforms
    late_flip = transforms.Compose(steps[1:3] + steps[:1] + steps[3:])
    assert "after ToTensor" in ex.check_train_transform(late_flip).message
    other_stats = transforms.Compose(steps[:3] + [transforms.Normalize((0.4,) * 3, (0.2,) * 3)])
    assert "mean and std" in ex.check_train_transform(other_stats).message
    assert "Compose" in ex.check_train_transform(steps).message


def test_check_block4_only():
    vgg = models.vgg16(weights=None)
    vgg.classifier[6] = torch.nn.Linear(4096, 5)
    assert not ex.check_block4_only(vgg)  # everything trains
    set_trainable(vgg, False)
    frozen = ex.check_block4_only(vgg)
    assert "3 of block 4's 3 convolutions are frozen" in frozen.message
    assert "new head is frozen" in frozen.message
    for index in (17, 19, 21):
        set_trainable(vgg.features[index], True)
    set_trainable(vgg.classifier[6], True)
    assert ex.check_block4_only(vgg)
    set_trainable(vgg.features[24], True)
    assert "features.24" in ex.check_block4_only(vgg).message
