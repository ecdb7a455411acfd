"""Average two weights files of the same prior (a "model soup", Wortsman et al. 2022), keeping the
first file's metadata: python soup.py A B OUT [WEIGHT_OF_B]   (default 0.5)"""
import sys
from nar.core.checkpoint import load_checkpoint, save_checkpoint

a_path, b_path, out_path = sys.argv[1:4]
w = float(sys.argv[4]) if len(sys.argv) > 4 else 0.5
(a, meta), (b, _) = load_checkpoint(a_path), load_checkpoint(b_path)
if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
    sys.exit(f"soup: {a_path} and {b_path} do not hold the same tensors")
meta["soup"] = {"a": a_path, "b": b_path, "weight_of_b": w}
out = {k: ((1 - w) * a[k].float() + w * b[k].float()).to(a[k].dtype) if a[k].is_floating_point() else a[k] for k in a}
save_checkpoint(out_path, out, meta)
print(f"soup: {out_path} = {1 - w:g} x {a_path} + {w:g} x {b_path} ({len(out)} tensors)")
