"""What the notebooks use around the lesson; you need not read it to follow the lesson.

lesson (each notebook's set-up call and the shared baseline), plots, widgets and demos (the
sliders and the plain functions behind them), checkpoints (train once, reuse), seeds (tables over
several seeds), cifar10 (a local copy, a generated stand-in, the offline messages) and checks (the
argument checks). The checks of the exercises are in lesson_utils.exercises.
"""
