import pytest
import torch
from PIL import Image

from benchmark.conditions.clip_text import TextEncoder, split_sentences
from benchmark.conditions.keywords import keyword_table
from benchmark.config import CellConfig
from benchmark.errors import BenchError
from benchmark.training import train_cell

FASHION = keyword_table("fashion_mnist")


def name_of(text: str) -> str:
    return FASHION.class_names[FASHION.match(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a red dress", "Dress"),  # the class name itself
        ("a cosy Hoodie", "Pullover"),  # synonym, case
        ("SWEATER", "Pullover"),
        ("blue jeans", "Trouser"),
        ("two sneakers", "Sneaker"),  # plural -s
        ("dresses for summer", "Dress"),  # plural -es
        ("running shoes!", "Sneaker"),  # punctuation
        ("(handbag)", "Bag"),
        ("black ankle boots", "Ankle boot"),  # longest phrase wins over "boot"
        ("a boot", "Ankle boot"),
        ("a white T-shirt", "T-shirt/top"),  # "shirt" inside "t-shirt" is not a whole word
        ("a plain shirt", "Shirt"),  # Shirt maps to Shirt only
        ("leather jacket", "Coat"),
    ],
)
def test_keyword_matching(text, expected):
    assert name_of(text) == expected


def test_keywords_are_whole_words():
    with pytest.raises(BenchError, match="no known fashion_mnist keyword"):
        FASHION.match("a bagel and a topping")  # "bag" and "top" only inside other words


def test_tie_is_an_error_naming_both_classes():
    with pytest.raises(BenchError, match=r"names Dress \('dress'\) and Shirt \('shirt'\) equally"):
        FASHION.match("a shirt over a dress")


def test_no_match_lists_known_keywords():
    with pytest.raises(BenchError) as err:
        FASHION.match("a purple spaceship")
    assert "known keywords: ankle boot, bag, boot" in str(err.value)


def test_mnist_words_and_digits():
    mnist = keyword_table("mnist")
    assert mnist.match("Seven") == 7 and mnist.match("draw a 3 please") == 3 and mnist.match("two twos") == 2


def test_every_phrase_names_one_class():
    for phrase, index in FASHION.phrases.items():
        assert FASHION.match(phrase) == index, phrase


@pytest.fixture(scope="module")
def tiny_encoder():
    return TextEncoder("cvae-tiny-clip", normalize=False)


def test_sentence_splitting():
    assert split_sentences("A dog runs. It is happy!  Is it?\nYes") == ["A dog runs.", "It is happy!", "Is it?", "Yes"]
    with pytest.raises(BenchError, match="empty text"):
        split_sentences("  ")


def test_embedding_is_the_mean_of_sentence_embeddings(tiny_encoder):
    two = "A dog runs on the beach. The sky is blue."
    parts = [tiny_encoder.model.encode_text(tiny_encoder.tokenizer([s])).float()[0] for s in split_sentences(two)]
    assert torch.allclose(tiny_encoder.embed([two])[0], torch.stack(parts).mean(0), atol=1e-6)
    long_text = " ".join(["word"] * 200)  # over CLIP's 77 tokens: truncated, not an error
    assert tiny_encoder.embed([long_text]).shape == (1, 64)


def test_normalised_embeddings_have_unit_length():
    encoder = TextEncoder("cvae-tiny-clip", normalize=True)
    vectors = encoder.embed(["A cat. On a mat.", "A plane over a lake."])
    assert torch.allclose(vectors.norm(dim=1), torch.ones(2))


def test_cache_means_the_second_call_runs_no_encoder(tiny_encoder):
    texts = ["A bus on a street.", "Two people eat cake."]
    first = tiny_encoder.embed(texts)
    calls = tiny_encoder.calls
    fresh = TextEncoder("cvae-tiny-clip", normalize=False)  # new process state, same disk cache
    again = fresh.embed(texts)
    assert fresh.calls == 0 and tiny_encoder.calls == calls
    assert torch.equal(first, again)


def test_random_init_is_deterministic(tiny_encoder):
    other = TextEncoder("cvae-tiny-clip", normalize=False)
    for p, q in zip(tiny_encoder.model.parameters(), other.model.parameters()):
        assert torch.equal(p, q)


def test_missing_checkpoint_file_is_a_clear_error(tmp_path):
    with pytest.raises(BenchError, match="checkpoint file not found"):
        TextEncoder(f"ViT-B-32:{tmp_path}/weights.pt")
    with pytest.raises(BenchError, match="unknown open_clip model 'NoSuchNet'"):
        TextEncoder("NoSuchNet")
    with pytest.raises(ValueError, match="condition 'text' needs text_encoder"):
        CellConfig(dataset="coco", condition="text", image_size=64)


def test_coco_cell_trains_one_epoch_and_samples_from_a_caption(shared_data):
    config = CellConfig(
        dataset="coco",
        condition="text",
        text_encoder="cvae-tiny-clip",
        image_size=64,
        backbone="conv",
        conditioning="concat",
        latent_dim=16,
        batch_size=16,
        epochs=1,
    )
    result = train_cell(config, device="cpu", data_dir=shared_data)
    assert len(result.log) == 1 and result.log[0]["loss"] > 0
    assert result.conditions.notes["trained"] is False
    assert "untrained" in result.conditions.notes["warnings"][0]
    caption = TextEncoder("cvae-tiny-clip").embed(["A plane floating on a lake surrounded by mountains."])
    images = result.model.sample(caption.expand(4, -1), torch.Generator().manual_seed(0))
    assert images.shape == (4, 3, 64, 64)


def test_bench_sample_writes_a_png_grid(tmp_path, cli):
    results = tmp_path / "results"
    cell = ["dataset=synthetic", "backbone=mlp", "hidden=[64]", "train_size=1000", "epochs=1", "latent_dim=4"]
    run = cli("run", *[f"--set={a}" for a in cell], "--results", results, "--device", "cpu")
    assert run.returncode == 0, run.stderr
    (cell_id,) = [p.parent.name for p in results.glob("*/metrics.json")]
    out = tmp_path / "ring.png"
    sample = ["sample", "--cell", cell_id, "--results", results]
    sampled = cli(*sample, "--text", "a big ring", "-n", "16", "--out", out)
    assert sampled.returncode == 0, sampled.stderr
    assert "class 4 (ring)" in sampled.stdout
    with Image.open(out) as image:  # 28 px images enlarged 4x by default, padding included
        assert image.format == "PNG" and image.size == (4 * (4 * 28 + 5), 4 * (4 * 28 + 5))
        default = image.copy()
    assert cli(*sample, "--text", "a big ring", "-n", "16", "--out", out, "--scale", "1").returncode == 0
    with Image.open(out) as image:
        assert image.size == (4 * 28 + 5, 4 * 28 + 5)
        assert default.resize(image.size, Image.NEAREST).tobytes() == image.tobytes()  # the same pixels
    unknown = cli("sample", "--cell", "000000000000", "--text", "ring", "--results", results)
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: no trained cell '000000000000'")
    no_class = cli(*sample, "--text", "a spaceship")
    assert no_class.returncode == 2 and "no known synthetic keyword in 'a spaceship'" in no_class.stderr
