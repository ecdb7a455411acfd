"""A copy of the shipped set in DIR with one prior replaced by a run's checkpoint and/or new sampling
defaults, for `nar bench --ckpt-dir DIR` (the package's files are left as they are).

    python make_set.py DIR [--finetune PRIOR RUN] [--sampling PRIOR KEY=VALUE ...]
"""
import argparse
import importlib.util
import shutil
from pathlib import Path

from nar.core.config import parse_overrides

parser = argparse.ArgumentParser()
parser.add_argument("out", type=Path)
parser.add_argument("--finetune", nargs=2, metavar=("PRIOR", "RUN"))
parser.add_argument("--sampling", nargs="+", metavar="PRIOR KEY=VALUE")
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)
for f in Path("nar/assets/models").glob("*.safetensors"):
    shutil.copy(f, args.out / f.name)
spec = importlib.util.spec_from_file_location("ship_models", "scripts/ship_models.py")
ship = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ship)
ship.MODELS_DIR = args.out
if args.finetune:
    ship.ship_finetune(args.finetune[0], Path(args.finetune[1]))
if args.sampling:
    ship.ship_sampling(args.sampling[0], parse_overrides(args.sampling[1:]))
