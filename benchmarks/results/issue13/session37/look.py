import sys, json, torch
from safetensors import safe_open
from safetensors.torch import load_file
from PIL import Image
from nar.pipelines.bench.quality import render_real
from nar.pipelines.upscale import load_sr, upscale_tensor
from nar.tokenizer.load import load_tokenizer
from nar.sr.tokens import TokenSRConfig, TokenUpsampler
torch.set_num_threads(1)
ck, out = sys.argv[1], sys.argv[2]
steps, temp, choice = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
src = sys.argv[6] if len(sys.argv) > 6 else None
tok = load_tokenizer("nar/assets/models/tokenizer.safetensors"); sr = load_sr(None, "cpu")
with safe_open(ck, "pt") as f: cfg = TokenSRConfig(**json.loads(f.metadata()["config"]))
m = TokenUpsampler(cfg); m.load_state_dict(load_file(ck)); m.eval()
with torch.inference_mode():
    if src: t = torch.load(src)[[0, 25, 50, 75]]
    else: t = tok.encode(render_real(4, 512, 1_000_144 + 2, True))
    real = render_real(4, 1024, 1_000_144 + 2, True) if not src else None
    pix = upscale_tensor(tok.decode_tokens(t).clamp(-1, 1), sr, passes=1)
    fine = m.sample(t, steps=steps, temperature=temp, choice_temperature=choice, generator=torch.Generator().manual_seed(0))
    tk = tok.decode_tokens(fine).clamp(-1, 1)
rows = [pix, tk] + ([real] if real is not None else [])
# crop the centre 512² of each 1024² image so detail shows: a grid of rows x 4
crops = torch.stack([torch.stack([r[i, :, 256:768, 256:768] for i in range(4)]) for r in rows])
grid = torch.cat([torch.cat(list(c), dim=2) for c in crops], dim=1)
Image.fromarray(((grid.permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()).save(out)
