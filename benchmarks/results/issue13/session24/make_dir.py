"""Copy the shipped models into DIR, then apply sampling changes (sundae) or a finetune (ar) there."""
import importlib.util, shutil, sys
from pathlib import Path
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
for f in Path("nar/assets/models").glob("*.safetensors"):
    shutil.copy(f, out / f.name)
spec = importlib.util.spec_from_file_location("ship_models", "scripts/ship_models.py")
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
m.MODELS_DIR = out
if sys.argv[2] == "sampling":
    from nar.core.config import parse_overrides
    m.ship_sampling(sys.argv[3], parse_overrides(sys.argv[4:]))
else:
    m.ship_finetune(sys.argv[3], Path(sys.argv[4]))
