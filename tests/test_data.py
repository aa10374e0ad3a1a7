import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

from lesson_utils import data, setup
from lesson_utils.support import cifar10 as cifar10_module
from lesson_utils.data import CLASSES, ArrayDataset, TensorLoader, augment_batch, make_loaders
from lesson_utils.support.cifar10 import (
    DataUnavailableError,
    describe_dataset,
    load_cifar10,
    load_image_folder,
    make_generated_cifar,
)


def test_generated_data_is_cifar_shaped_and_deterministic():
    a, b = make_generated_cifar(200, seed=3), make_generated_cifar(200, seed=3)
    assert a.data.shape == (200, 32, 32, 3) and a.data.dtype == np.uint8
    assert np.array_equal(a.data, b.data) and a.targets == b.targets
    assert sorted(set(a.targets)) == list(range(10))
    assert not np.array_equal(a.data, make_generated_cifar(200, seed=4).data)
    image, label = load_cifar10("generated", n_generated=(100, 10))[0][0]
    assert image.shape == (3, 32, 32) and -1 <= image.min() and image.max() <= 1


def test_loader_batches_and_last_batch_of_16():
    # CIFAR-10's 50,000 training images; only their number matters here (np.zeros: no memory
    # is touched until an image is read, and none is)
    train_set = ArrayDataset(np.zeros((50_000, 32, 32, 3), np.uint8), [0] * 50_000)
    train_loader, _ = make_loaders(train_set, train_set)
    assert len(train_loader) == 782  # 781 full batches + 1
    batches = list(train_loader.batch_sampler)  # indices only: no image is loaded
    assert {len(b) for b in batches[:-1]} == {64}
    assert len(batches[-1]) == 50_000 % 64 == 16


def _write_folder(root, classes=CLASSES, size=(32, 32), per_class=2):
    for split in ("train", "test"):
        for label, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                image = Image.new("RGB", size, (label * 20, i * 50, 0))
                image.save(root / split / name / f"{i}.png")


def test_image_folder_copy_via_cifar10_root(tmp_path, monkeypatch):
    _write_folder(tmp_path)
    train_set, test_set = load_cifar10("auto", root=tmp_path)
    assert len(train_set) == len(test_set) == 20
    assert train_set.targets == [label for label in range(10) for _ in range(2)]
    assert tuple(train_set.data[2, 0, 0]) == (20, 0, 0)  # class 1 ("automobile"), first image
    assert describe_dataset(train_set) == "CIFAR-10 (image folders)"  # no machine path


def test_image_folder_errors_name_the_culprit(tmp_path):
    _write_folder(tmp_path, classes=CLASSES[:9])
    with pytest.raises(FileNotFoundError, match="truck"):
        load_image_folder(tmp_path / "train")
    (tmp_path / "train" / "truck").mkdir()
    Image.new("RGB", (28, 28)).save(tmp_path / "train" / "truck" / "small.png")
    with pytest.raises(ValueError, match="small.png is 28x28"):
        load_image_folder(tmp_path / "train")


def test_offline_without_data_names_the_ways_out(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(cifar10_module, "DATA_DIR", tmp_path)
    with pytest.raises(DataUnavailableError) as err:
        load_cifar10("download")
    message = str(err.value)
    assert "internet" in message and "CIFAR10_ROOT" in message and "generated" in message


def test_unknown_data_choice():
    with pytest.raises(ValueError, match="unknown data 'imagenet'"):
        load_cifar10("imagenet")


def test_tensor_loader_matches_the_lessons_dataloader_bit_for_bit():
    train_set, _ = load_cifar10("generated", n_generated=(300, 10))
    torch.manual_seed(7)
    expected = list(make_loaders(train_set, train_set)[0])
    state_after_dataloader = torch.get_rng_state()
    torch.manual_seed(7)
    got = list(TensorLoader(train_set))
    assert len(got) == len(expected) == 5
    for (x1, y1), (x2, y2) in zip(expected, got):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    # and it leaves torch's random state where the DataLoader leaves it
    assert torch.equal(torch.get_rng_state(), state_after_dataloader)
    # a second epoch: a new order, still the DataLoader's
    torch.manual_seed(7)
    loader = make_loaders(train_set, train_set)[0]
    expected = [y for _ in range(2) for _, y in loader]
    torch.manual_seed(7)
    tensor_loader = TensorLoader(train_set, batch_size=64)
    got = [y for _ in range(2) for _, y in tensor_loader]
    assert all(torch.equal(a, b) for a, b in zip(expected, got)) and len(got) == 10


def test_augment_batch_flips_and_crops_like_torchvision():
    torch.manual_seed(0)
    x = torch.rand(4000, 3, 32, 32) * 2 - 1
    flipped = augment_batch(x, flip=True, crop_padding=0)
    same = (flipped == x).flatten(1).all(1)
    mirrored = (flipped == x.flip(3)).flatten(1).all(1)
    assert bool((same | mirrored).all())
    assert 0.45 < mirrored.float().mean() < 0.55
    cropped = augment_batch(x, flip=False, crop_padding=4)
    assert cropped.shape == x.shape
    # each image is a shifted copy: its offset is uniform over the 9x9 positions, padding is
    # black (-1)
    padded = torch.nn.functional.pad(x[:50], (4, 4, 4, 4), value=-1.0)
    for i in range(50):
        windows = padded[i].unfold(1, 32, 1).unfold(2, 32, 1)  # [3, 9, 9, 32, 32]
        assert (windows == cropped[i][:, None, None]).flatten(3).all(3).all(0).any()


def test_damaged_local_copy_names_its_files_and_is_kept(tmp_path, monkeypatch):
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    (batches / "data_batch_1").write_bytes(b"half a copy")
    with pytest.raises(DataUnavailableError) as err:
        load_cifar10("local", root=tmp_path)
    message = str(err.value)
    assert "data_batch_1: fails its MD5 checksum (11 bytes)" in message
    assert "test_batch: missing" in message and "delete" not in message
    assert "extract cifar-10-batches-py again" in message
    assert (batches / "data_batch_1").read_bytes() == b"half a copy"


def test_partial_download_says_delete_and_retry(tmp_path, monkeypatch):
    def partial_download(url, root, filename=None, md5=None, **kwargs):
        (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"truncated")
        raise RuntimeError("File not found or corrupted.")

    monkeypatch.setattr(
        cifar10_module.datasets.CIFAR10, "download", lambda self: partial_download(None, self.root)
    )
    monkeypatch.setattr(cifar10_module, "DATA_DIR", tmp_path)
    with pytest.raises(DataUnavailableError, match="delete .*cifar-10-python.tar.gz and retry"):
        load_cifar10("download")


def test_unreadable_image_is_named(tmp_path):
    _write_folder(tmp_path)
    (tmp_path / "train" / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(OSError, match="broken.jpg"):
        load_image_folder(tmp_path / "train")


def _cifar10_tarball(folder, per_batch=8, seed=0):
    """A small CIFAR-10 in torchvision's own format (cifar-10-batches-py, pickled batches, in
    cifar-10-python.tar.gz), and the checksums torchvision checks, as its class attributes."""
    import hashlib
    import pickle
    import tarfile

    rng = np.random.default_rng(seed)
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    arrays = {}
    for name in names:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        arrays[name] = (data, labels)
        with open(batches / name, "wb") as file:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, file)
    with open(batches / "batches.meta", "wb") as file:
        pickle.dump({"label_names": list(CLASSES)}, file)
    tarball = folder / "cifar-10-python.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(batches, arcname="cifar-10-batches-py")

    def md5(path):
        return hashlib.md5(path.read_bytes()).hexdigest()

    attributes = {
        "tgz_md5": md5(tarball),
        "train_list": [[n, md5(batches / n)] for n in names[:5]],
        "test_list": [["test_batch", md5(batches / "test_batch")]],
        "meta": {
            "filename": "batches.meta",
            "key": "label_names",
            "md5": md5(batches / "batches.meta"),
        },
    }
    return tarball, attributes, arrays


@pytest.fixture
def small_cifar10(tmp_path, monkeypatch):
    """Our small tarball's checksums in place of the real ones (the loading is torchvision's)."""
    tarball, attributes, arrays = _cifar10_tarball(tmp_path / "made")
    for name, value in attributes.items():
        monkeypatch.setattr(cifar10_module.datasets.CIFAR10, name, value)
    return tarball, arrays


def test_cifar10_download_through_torchvision_from_a_local_server(
    small_cifar10, tmp_path, monkeypatch
):
    import functools
    import http.server
    import threading

    tarball, arrays = small_cifar10
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tarball.parent))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{tarball.name}"
        monkeypatch.setattr(cifar10_module.datasets.CIFAR10, "url", url)
        monkeypatch.setattr(cifar10_module, "DATA_DIR", tmp_path / "data")
        train_set, test_set = load_cifar10("download")
    finally:
        server.shutdown()
    assert (tmp_path / "data" / "cifar-10-python.tar.gz").exists()  # downloaded, then extracted
    assert len(train_set) == 40 and len(test_set) == 8 and train_set.classes == list(CLASSES)
    data, labels = arrays["data_batch_1"]
    assert np.array_equal(train_set.data[0], data[0].reshape(3, 32, 32).transpose(1, 2, 0))
    assert train_set.targets[:8] == labels
    image, label = train_set[0]
    assert image.shape == (3, 32, 32) and -1 <= image.min() and image.max() <= 1


def test_a_valid_local_copy_in_torchvisions_format_loads(small_cifar10, tmp_path):
    tarball, arrays = small_cifar10
    train_set, test_set = load_cifar10("local", root=tarball.parent)
    assert len(train_set) == 40 and len(test_set) == 8
    assert test_set.targets == arrays["test_batch"][1]


def test_the_validation_split_is_stratified_disjoint_and_fixed():
    targets = np.repeat(np.arange(10), 5000)  # CIFAR-10's training set: 5,000 per class
    np.random.default_rng(3).shuffle(targets)
    train_idx, val_idx = data.validation_split(targets)
    assert len(train_idx) == 45_000 and len(val_idx) == 5_000
    assert np.bincount(targets[val_idx]).tolist() == [500] * 10  # stratified
    assert np.intersect1d(train_idx, val_idx).size == 0
    assert np.union1d(train_idx, val_idx).size == 50_000
    again = data.validation_split(targets)
    assert np.array_equal(again[1], val_idx)  # the same images every time
    assert not np.array_equal(data.validation_split(targets, seed=1)[1], val_idx)


def test_setup_trains_on_the_images_outside_validation(capsys):
    lesson = setup(QUICK=True)
    full = lesson.full_train_set
    assert len(lesson.train_set) + len(lesson.val_set) == len(full)
    assert np.array_equal(lesson.val_set.data, np.asarray(full.data)[lesson.val_indices])
    assert np.array_equal(lesson.train_set.data, np.asarray(full.data)[lesson.train_indices])
    assert lesson.val_set.transform is lesson.test_set.transform  # never augmented
    assert "940 train, 100 validation" in capsys.readouterr().out


def test_seeds_draw_different_few_label_subsets():
    """07: each seed draws its own labelled images, so the spread includes the choice."""
    dataset = make_generated_cifar(400, seed=0)
    a, b = (data.select_classes(dataset, [5, 6], per_class=4, seed=s) for s in (0, 1))
    assert not np.array_equal(a.data, b.data)
    assert np.array_equal(a.data, data.select_classes(dataset, [5, 6], per_class=4, seed=0).data)
