from PIL import Image

from lesson_utils.course import figures


def test_figures_script_draws_every_figure(tmp_path):
    figures.main(["--out", str(tmp_path)])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"{name}.png" for name in figures.FIGURES)
    for name in names:
        with Image.open(tmp_path / name) as image:
            assert image.size[0] > 300 and image.size[1] > 150
