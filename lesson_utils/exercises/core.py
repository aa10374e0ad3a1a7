"""What the checks of every notebook share: the Feedback a check answers with and its
wording (right, wrong, not answered), the guard that keeps a check from raising, seeding, quiet
calls of the student's code, a time limit, and the reading of numbers typed as answers."""

import contextlib
import functools
import math
import random
import re
import signal
import threading
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn


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


def _not_written(what):
    return Feedback(False, f"Not answered yet: {what} returns None; write its body.")


def _show(value, limit=60):
    """A short, safe description of what the student passed (repr can fail or be huge)."""
    try:
        text = repr(value)
    except Exception:  # a repr that raises, or an int too long to print
        text = (
            f"an int of {int(value.bit_length() * math.log10(2)) + 1} digits"
            if isinstance(value, int)
            else f"an object of type {type(value).__name__}"
        )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error(err):
    text = " ".join(str(err).split())
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


TIME_LIMIT_S = 30  # a check, the student's code included, answers within this


class _TooSlow(BaseException):
    """Raised by the alarm inside the student's code; a BaseException, so that no `except
    Exception` of the check (or of the student) takes it for an ordinary error."""


@contextlib.contextmanager
def _time_limit(seconds):
    """Stop the block after `seconds` with _TooSlow, where the platform allows it (SIGALRM: Linux
    and macOS, in the main thread, where a notebook's code runs); elsewhere no limit."""
    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def stop(signum, frame):
        raise _TooSlow()

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _never_raises(expected):
    """Decorator: whatever goes wrong inside a check becomes feedback saying what it expected,
    and a check answers within TIME_LIMIT_S seconds even when the student's code never returns."""

    def decorate(check):
        @functools.wraps(check)
        def safe(*answers):
            try:
                with _time_limit(TIME_LIMIT_S):
                    return check(*answers)
            except _TooSlow:
                return _wrong(
                    f"your code did not return within {TIME_LIMIT_S} s (an endless loop?).",
                    "run it by hand on a small case first; Kernel > Interrupt stops a cell.",
                )
            except Exception as err:  # the student's object misbehaved in a way not foreseen
                shown = ", ".join(_show(a, 40) for a in answers)
                return _wrong(f"the check could not use {shown} ({_error(err)}).", expected)

        return safe

    return decorate


@contextlib.contextmanager
def _seeded(seed):
    """Seed torch, random and numpy for the check; the student's random state is left as it was."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def _quiet():
    """Warnings raised by the student's code would print paths of this machine: keep them out."""
    catcher = warnings.catch_warnings()
    catcher.__enter__()
    warnings.simplefilter("ignore")
    return catcher


# Numbers

_FRACTION = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*$")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}([, ]\d{3})+(\.\d+)?$")  # 2,560 or 11 730 (and 1,024.5)
_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+$")  # 3,75: one comma, not a group of three digits


def _plain_number_text(text):
    """A typed number as float() reads it: thousands separators (comma, space, underscore)
    dropped, a decimal comma made a point, a percent sign divided out. (None if it has none of
    these and is not a plain number either: float() then says.)"""
    text = text.strip().replace("\u00a0", " ").replace("\u202f", " ").replace("_", "")
    scale = 1.0
    if text.endswith("%"):
        text, scale = text[:-1].strip(), 0.01
    if _THOUSANDS.match(text):
        text = text.replace(",", "").replace(" ", "")
    elif _DECIMAL_COMMA.match(text):
        text = text.replace(",", ".")
    return text, scale


def _as_number(answer, text=True):
    """(value, None) for a usable number, else (None, what is wrong with it). A text such as
    '1,024' or '1/5' counts as a number when `text` (an answer typed in), not when returned by
    the student's function."""
    if isinstance(answer, bool) or isinstance(answer, str) and not text:
        return None, f"{_show(answer)} is not a number."
    if isinstance(answer, str):
        text, scale = _plain_number_text(answer)
        fraction = _FRACTION.match(text)
        if fraction and float(fraction.group(2)) != 0:
            return scale * float(fraction.group(1)) / float(fraction.group(2)), None
        try:
            value = scale * float(text)
        except ValueError:
            return None, f"{_show(answer)} is not a number."
    else:
        try:
            value = float(answer)
        except OverflowError:
            return None, f"{_show(answer, 30)} is far too large."
        except Exception:  # a list, a dict, a function, a tensor of several values...
            return None, f"{_show(answer)} is not a number."
    if math.isnan(value):
        return None, "nan is not a number."
    if math.isinf(value):
        return None, f"{_show(answer)} is infinite."
    return value, None


def _number(value):
    """A number as the feedback shows it: whole numbers in full, others to 6 digits."""
    return f"{int(value)}" if float(value).is_integer() else f"{value:.6g}"


def _check_number(answer, expected, known_mistakes, hint, why, rel_tol=1e-6, whole=False):
    """Compare a number; `known_mistakes` maps the wrong value of a typical slip to its cause.
    whole=True: a count (of parameters, of steps), so only a whole number can be right."""
    if answer is None:
        return NOT_ANSWERED
    value, problem = _as_number(answer)
    if problem:
        return _wrong(problem, hint)
    if whole and not value.is_integer():
        return _wrong(f"{_show(answer, 30)} is not a whole number: this is a count.", hint)
    if math.isclose(value, expected, rel_tol=rel_tol):
        return _right(why)
    for mistake, cause in known_mistakes.items():
        if math.isclose(value, mistake, rel_tol=rel_tol):
            return _wrong(f"{_show(answer, 30)} {cause}", hint)
    return _wrong(f"{_show(answer, 30)} is not it.", hint)


def _call(function, *args):
    """Call the student's function: (result, None), or (None, the error as text)."""
    catcher = _quiet()
    try:
        return function(*args), None
    except Exception as err:  # the student's code: any error is feedback
        return None, _error(err)
    finally:
        catcher.__exit__(None, None, None)


def _wanted_class(answer, name, signature):
    """None when `answer` is an nn.Module subclass, else the feedback that says why not."""
    if answer is None:
        return NOT_ANSWERED
    if isinstance(answer, nn.Module):
        return _wrong(
            f"{_show(answer)} is a module object; the check needs the class itself, to "
            "build its own.",
            f"pass {name}, not {name}(...).",
        )
    if not isinstance(answer, type) or not issubclass(answer, nn.Module):
        return _wrong(
            f"{_show(answer)} is not a subclass of nn.Module.",
            f"class {name}(nn.Module): with {signature} and forward(self, x).",
        )
    return None
