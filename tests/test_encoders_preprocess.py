import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from raypi.encoders import get_encoder, image_seed
from raypi.encoders.preprocess import IMAGENET_MEAN, IMAGENET_STD, crop_box


@pytest.fixture(scope="module")
def radiograph():
    rng = np.random.default_rng(0)
    small = (rng.random((37, 31)) * 255).astype(np.uint8)
    # Smooth, non-square, odd-sized: resize and crop offsets matter.
    return np.asarray(Image.fromarray(small).resize((331, 403), Image.BILINEAR))


def _reference(image, steps):
    return T.Compose(steps)(Image.fromarray(image))


def test_imagenet_encoders_match_torchvision_transforms(radiograph):
    normalize = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    rgb = T.Lambda(lambda pil: pil.convert("RGB"))
    for name, resize in (("gloria", 238), ("medical_mae", 238), ("c2l", 224)):
        ours = get_encoder(name).preprocess(radiograph)
        ref = _reference(
            radiograph, [rgb, T.Resize(resize), T.CenterCrop(224), T.ToTensor(), normalize]
        )
        assert ours.shape == (3, 224, 224)
        assert torch.equal(ours, ref), name


def test_mrm_matches_its_repository_transform(radiograph):
    ref = _reference(
        radiograph,
        [
            T.Resize(224),
            T.CenterCrop((224, 224)),
            T.Grayscale(num_output_channels=3),
            T.ToTensor(),
            T.Normalize(mean=[0.4978], std=[0.2449]),
        ],
    )
    assert torch.equal(get_encoder("mrm").preprocess(radiograph), ref)


def test_biovil_t_resizes_512_crops_448_scales_to_unit_range(radiograph):
    ours = get_encoder("biovil_t").preprocess(radiograph)
    ref = _reference(radiograph, [T.Resize(512), T.CenterCrop(448), T.ToTensor()])
    assert ours.shape == (3, 448, 448)
    assert torch.equal(ours, ref.expand(3, -1, -1))
    assert 0.0 <= ours.min() and ours.max() <= 1.0


def test_study_constants_on_a_flat_image():
    flat = np.full((300, 260), 128, np.uint8)
    value = 128 / 255
    mrm = get_encoder("mrm").preprocess(flat)
    assert torch.allclose(mrm, torch.full_like(mrm, (value - 0.4978) / 0.2449), atol=1e-6)
    gloria = get_encoder("gloria").preprocess(np.stack([flat] * 3, axis=-1))
    expected = (value - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(gloria.mean(dim=(1, 2)), expected, atol=1e-6)
    biovil = get_encoder("biovil_t").preprocess(flat)
    assert torch.allclose(biovil, torch.full_like(biovil, value))


def test_rad_dino_matches_the_hf_processor(radiograph):
    from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil

    processor = BitImageProcessorPil(
        size={"shortest_edge": 518},
        resample=3,
        crop_size={"height": 518, "width": 518},
        rescale_factor=1 / 255,
        image_mean=[0.5307] * 3,
        image_std=[0.2583] * 3,
        do_convert_rgb=True,
    )
    ref = processor(np.stack([radiograph] * 3, -1), return_tensors="pt")["pixel_values"][0]
    assert torch.allclose(get_encoder("rad_dino").preprocess(radiograph), ref, atol=1e-6)


def test_biomedclip_matches_open_clip_transform(radiograph):
    from open_clip import image_transform

    from raypi.encoders.clip import OPENAI_MEAN, OPENAI_STD

    transform = image_transform(224, is_train=False, mean=OPENAI_MEAN, std=OPENAI_STD)
    ref = transform(Image.fromarray(radiograph))
    assert torch.equal(get_encoder("biomedclip").preprocess(radiograph), ref)


def test_views_are_deterministic_per_image_seed_and_view(radiograph):
    spec = get_encoder("gloria")
    seed = image_seed("img-1", 0)
    assert torch.equal(spec.augment(radiograph, 0, seed), spec.preprocess(radiograph))
    first = spec.augment(radiograph, 1, seed)
    assert first.shape == (3, 224, 224)
    assert torch.equal(first, spec.augment(radiograph, 1, seed))
    assert not torch.equal(first, spec.augment(radiograph, 2, seed))
    assert not torch.equal(first, spec.augment(radiograph, 1, image_seed("img-2", 0)))
    assert not torch.equal(first, spec.augment(radiograph, 1, image_seed("img-1", 1)))
    with pytest.raises(ValueError, match="view"):
        spec.augment(radiograph, -1, seed)


def test_image_seed_is_stable_across_processes():
    assert image_seed("img-1", 0) == 7907444327980147229
    assert 0 <= image_seed("x", 7) < 2**63


def test_crop_boxes_cover_40_to_90_percent():
    areas = []
    for seed in range(300):
        top, left, height, width = crop_box(400, 300, seed, 1)
        assert 0 <= top <= 400 - height and 0 <= left <= 300 - width
        areas.append(height * width / (400 * 300))
    assert 0.39 <= min(areas) and max(areas) <= 0.91
    assert max(areas) - min(areas) > 0.4


def test_bad_images_raise_clear_errors():
    spec = get_encoder("tiny_vit")
    with pytest.raises(TypeError, match="uint8"):
        spec.preprocess(np.zeros((10, 10), np.float32))
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        spec.preprocess(np.zeros((10, 10, 4), np.uint8))
    with pytest.raises(TypeError, match="text encoder"):
        get_encoder("tiny_bert").preprocess(np.zeros((10, 10), np.uint8))
