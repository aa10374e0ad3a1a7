"""Checks for the exercises at the end of each notebook, in the style of Kaggle Learn's
learntools: one module per notebook (nb01_shapes ... nb07_transfer), and core for what they share.

Each check_... takes the student's answer (a number, a function, a class, a transform) and says
whether it is right; when it is not, it says what it saw and gives a hint, never the answer. A
check runs the student's code on cases of its own (other sizes, seeds, learning rates), and it
never raises: whatever it is given, it answers with a Feedback. The worked answers are in
notebooks/solutions/.
"""

from .core import Feedback
from .nb01_shapes import check_in_features_function, check_view_shape
from .nb02_training import check_optimizer_steps, check_topk_accuracy
from .nb03_dropout import check_dropout_module, check_dropout_value
from .nb04_modular import check_norm_block_parameters, check_norm_conv_block
from .nb05_lr_decay import check_exponential_lr, check_train_epochs, check_warmup_scheduler
from .nb06_augmentation import check_train_transform, check_unchanged_probability
from .nb07_transfer import check_head_parameters, check_train_only_block
