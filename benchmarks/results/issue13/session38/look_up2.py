"""Centre 512² crops at 1024²: base decode of 512² tokens + pixel SR | up2 decoder | the 1024² render."""
import sys, torch
from nar.data.landscapes import LandscapeDataset
from nar.tokenizer.load import load_tokenizer
from nar.pipelines.upscale import load_sr, upscale_tensor
from nar.core.images import row_grid, save_png
torch.set_num_threads(1)
ckpt, out = sys.argv[1], sys.argv[2]
idx = [int(i) for i in (sys.argv[3] if len(sys.argv) > 3 else "0,1,2,3").split(",")]
base, up = load_tokenizer("nar/assets/models/tokenizer.safetensors"), load_tokenizer(ckpt)
lo, hi = LandscapeDataset(10**6, 512, seed=17), LandscapeDataset(10**6, 1024, seed=17)
rows = [[], [], []]
with torch.inference_mode():
    for i in idx:
        t = base.encode(lo[i][0][None])
        a = upscale_tensor(base.decode_tokens(t).clamp(-1, 1), load_sr(None, "cpu"))
        b = up.decode_tokens(t).clamp(-1, 1)
        c = hi[i][0][None]
        for r, x in zip(rows, (a, b, c)):
            r.append(x[..., 256:768, 256:768])
save_png(row_grid([torch.cat(r) for r in rows]), out)
