"""How long a saved run's fingerprint and description take (support/runs.py), for the course's
three networks on a CIFAR-10-sized TensorLoader (45,000 generated images, with augmentation):
best and median of 7.  OMP_NUM_THREADS=2 python scripts/fingerprint_cost.py"""

import time

import numpy as np
import torch

from lesson_utils.data import ArrayDataset, TensorLoader, augment_batch, cifar10_transform
from lesson_utils.models import BatchNormConvNet, ConvNet, DropoutConvNet
from lesson_utils.support import runs


def seconds(function, repeats=7):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times), sorted(times)[len(times) // 2]


def main():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (45000, 32, 32, 3), dtype=np.uint8)
    dataset = ArrayDataset(images, (np.arange(45000) % 10).tolist(), cifar10_transform())
    loader = TensorLoader(dataset, 64, augment=augment_batch)
    print(f"{torch.get_num_threads()} threads")
    for network in (ConvNet, DropoutConvNet, BatchNormConvNet):
        torch.manual_seed(0)
        model = network()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=7, gamma=0.1)
        fp = seconds(lambda: runs.fingerprint(model, loader, optimizer, 14, "cpu", scheduler))
        key = seconds(
            lambda: runs.run_key(model, loader, loader, optimizer, 14, "cpu", scheduler=scheduler)
        )
        print(
            f"{network.__name__:<17} fingerprint {fp[0]:.3f} s (median {fp[1]:.3f}), "
            f"description {key[0]:.3f} s (median {key[1]:.3f})"
        )


if __name__ == "__main__":
    main()
