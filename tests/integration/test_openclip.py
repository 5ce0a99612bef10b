"""The open_clip code path, with a small randomly initialised model saved to a local file.

Real CLIP weights can't be downloaded here; a tiny architecture (a model-config
JSON, the same route users take for custom models) with random weights runs
the exact code users run with ``--weights``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mmsearch.cli import cli
from mmsearch.errors import ConfigError, WeightsNotFoundError
from tests.support.media import real_photos

pytestmark = pytest.mark.model

TINY = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("tiny-clip")
    config = folder / "tiny-clip.json"
    config.write_text(json.dumps(TINY))
    open_clip.add_model_config(str(config))
    torch.manual_seed(0)
    model = open_clip.create_model("tiny-clip")
    weights = folder / "tiny-clip.pt"
    torch.save(model.state_dict(), weights)
    return config, weights


def test_local_weights_shapes_normalisation_and_bf16(tiny_clip, tmp_path: Path) -> None:
    from mmsearch.embedders import create_embedder

    config, weights = tiny_clip
    fp32 = create_embedder(
        "openclip", clip_model=str(config), weights=str(weights), precision="fp32"
    )
    bf16 = create_embedder(
        "openclip", clip_model=str(config), weights=str(weights), precision="bf16"
    )
    assert fp32.identity == bf16.identity  # precision does not change the space
    assert fp32.identity.dim == 64 and fp32.identity.weights.startswith("file-")
    photos = [Image.open(p).convert("RGB") for p in real_photos(tmp_path).values()]
    texts = ["a cup of coffee", "a cat", "a rocket on a launch pad"]
    for embed in ("embed_images", "embed_texts"):
        items = photos if embed == "embed_images" else texts
        a, b = getattr(fp32, embed)(items), getattr(bf16, embed)(items)
        assert a.shape == (len(items), 64) and a.dtype == np.float32
        assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
        assert (a * b).sum(axis=1).min() >= 0.999
    assert fp32.embed_texts([]).shape == (0, 64)
    spans = fp32.token_spans("Hello, worldwide friends!")
    assert spans[0] == (0, 5) and spans[-1] == (24, 25) and fp32.max_tokens == 75


def test_cli_index_and_search_with_weights_file(tiny_clip, library: Path, tmp_path: Path) -> None:
    config, weights = tiny_clip
    runner = CliRunner()
    idx = str(tmp_path / "idx")
    args = ["index", str(library), "--index", idx, "--model", "openclip"]
    args += ["--clip-model", str(config), "--weights", str(weights), "--json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == 5
    # a later search re-creates the model from the manifest (no options needed)
    result = runner.invoke(cli, ["search", "a red photo", "--index", idx, "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["results"]) == 5
    info = json.loads(runner.invoke(cli, ["info", "--index", idx, "--json"]).stdout)
    assert info["embedder"]["name"] == "openclip" and info["embedder"]["model"] == "tiny-clip"


def test_missing_weights_and_bad_model_are_clear_errors(tmp_path: Path) -> None:
    from mmsearch.embedders import create_embedder

    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        create_embedder("openclip", weights=str(tmp_path / "nope.pt"))
    with pytest.raises(ConfigError, match="unknown open_clip model"):
        create_embedder("openclip", clip_model="ViT-Nonexistent")


def test_reopening_with_other_space_settings_is_refused(
    tiny_clip, library: Path, tmp_path: Path
) -> None:
    config, weights = tiny_clip
    runner = CliRunner()
    idx = str(tmp_path / "idx")
    made = ["--index", idx, "--model", "openclip", "--clip-model", str(config)]
    result = runner.invoke(cli, ["index", str(library), *made, "--weights", str(weights)])
    assert result.exit_code == 0, result.output
    # The same settings again, or none, are fine; settings of other models mean nothing here.
    for extra in ([], ["--clip-model", str(config)], ["--weights", str(weights)]):
        again = runner.invoke(cli, ["index", str(library), "--index", idx, *extra])
        assert again.exit_code == 0, (extra, again.output)
    ignored = runner.invoke(cli, ["index", str(library), "--index", idx, "--conse-top-t", "5"])
    assert ignored.exit_code == 0, ignored.output
    other = runner.invoke(cli, ["index", str(library), "--index", idx, "--clip-model", "RN50"])
    assert other.exit_code != 0
    assert "built with clip_model" in other.output and "not RN50" in other.output
    assert "Traceback" not in other.output
