"""Predict one MNIST test digit with a trained checkpoint, or with the weights alone.

    python examples/mnist/predict.py runs/mnist/checkpoint.npz --index 7
    python examples/mnist/predict.py runs/mnist/model.safetensors --index 7
"""
import argparse
import os
import sys

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor
from tinygrad_cnn.data import load_mnist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import MODELS  # noqa: E402
from train import HERE, normalize  # noqa: E402


def load_model(path):
    """The trained model, in eval mode, from a checkpoint (its config names the model) or from a .safetensors
    file of weights (possibly PyTorch's: the model is the one whose state_dict has exactly its names and shapes)."""
    state = tc.load(path)
    if "config" in state:
        model, weights = MODELS[state["config"]["model"]](), state["model"]
    else:
        shapes = {name: tuple(value.shape) for name, value in state.items()}
        fitting = [make for make in MODELS.values()
                   if {name: tuple(value.shape) for name, value in make().state_dict().items()} == shapes]
        if not fitting:
            raise SystemExit(f"{path}: its weights fit none of the models {sorted(MODELS)}")
        model, weights = fitting[0](), state
    model.load_state_dict(weights)
    return model.eval()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--index", type=int, required=True, help="index of the test image (0-9999)")
    p.add_argument("--data-dir", default=os.path.join(HERE, "data"))
    args = p.parse_args(argv)

    model = load_model(args.checkpoint)
    data = load_mnist(args.data_dir)
    if not 0 <= args.index < len(data.test_images):
        p.error(f"--index must be in 0..{len(data.test_images) - 1}")
    with tc.no_grad():
        probabilities = model(Tensor(normalize(data.test_images[args.index:args.index + 1]))).softmax(axis=1)
    probabilities = probabilities.numpy()[0]
    print(f"test image {args.index}: predicted {probabilities.argmax()} (label {data.test_labels[args.index]})")
    for digit, p_digit in enumerate(probabilities):
        print(f"  {digit}: {p_digit:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
