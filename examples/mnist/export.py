"""Write a trained MNIST model as ONNX, to run where tinygrad_cnn is not installed (onnxruntime, ...).

    python examples/mnist/export.py runs/mnist/checkpoint.npz          # or runs/mnist/model.safetensors

writes model.onnx beside the checkpoint (or at --out): input 'images', float32 (N, 1, 28, 28) normalized as
train.py's `normalize` does, any N; output 'logits' (N, 10). When onnxruntime is installed, it runs the file on
test images and prints how far its logits are from ours.
"""
import argparse
import os
import sys

import numpy as np

import tinygrad_cnn as tc
from tinygrad_cnn import Tensor
from tinygrad_cnn.data import load_mnist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from predict import load_model  # noqa: E402
from train import HERE, normalize  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--out", default=None, help="where to write (default: model.onnx beside the checkpoint)")
    p.add_argument("--data-dir", default=os.path.join(HERE, "data"))
    args = p.parse_args(argv)

    model = load_model(args.checkpoint)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "model.onnx")
    tc.onnx.export(model, Tensor(np.zeros((1, 1, 28, 28), np.float32)), out, input_names=["images"],
                   output_names=["logits"])
    print(f"wrote {out}")
    try:
        import onnxruntime
    except ImportError:
        return 0
    images = normalize(load_mnist(args.data_dir).test_images[:100])
    logits = onnxruntime.InferenceSession(out).run(["logits"], {"images": images})[0]
    with tc.no_grad():
        ours = model(Tensor(images)).numpy()
    print(f"onnxruntime on 100 test images: largest logit difference from ours {np.abs(logits - ours).max():.2g}, "
          f"same predicted digit for {(logits.argmax(1) == ours.argmax(1)).sum()} of 100")
    return 0


if __name__ == "__main__":
    sys.exit(main())
