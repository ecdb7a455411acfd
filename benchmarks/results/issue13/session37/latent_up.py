import torch, torch.nn.functional as F, time
from nar.pipelines.bench.quality import render_real
from nar.eval.sharpness import relative_to, sharpness_report
from nar.pipelines.upscale import load_sr, upscale_tensor
from nar.tokenizer.load import load_tokenizer
torch.set_num_threads(2)
n, seed = 12, 1_000_144
r512 = render_real(n, 512, seed, True); r1024 = render_real(n, 1024, seed, True)
tok = load_tokenizer("nar/assets/models/tokenizer.safetensors"); sr = load_sr(None, "cpu")
real = sharpness_report(r1024, blocks=(16, 32))
out = {}
with torch.inference_mode():
    t = tok.encode(r512)
    q = tok.quantizer.lookup(t)
    out["dec512_sr"] = upscale_tensor(tok.decode_tokens(t).clamp(-1, 1), sr, passes=1)
    out["lat_bilinear"] = tok.decode_codes(F.interpolate(q, scale_factor=2, mode="bilinear"))
    up = F.interpolate(q, scale_factor=2, mode="bilinear")
    out["lat_bilinear_requant"] = tok.decode_tokens(tok.quantizer.nearest(up))
    z = tok.post_quant_conv(q)
    out["z_bicubic"] = tok.decoder(F.interpolate(z, scale_factor=2, mode="bicubic"))
    out["recon1024"] = tok.decode_tokens(tok.encode(r1024))
for k, v in out.items():
    v = v.clamp(-1, 1); out[k] = v
    s = relative_to(sharpness_report(v, blocks=(16, 32)), real)
    print(k, {a: round(b, 3) for a, b in s.items() if isinstance(b, float)})
torch.save({k: v[:4] for k, v in out.items()} | {"real": r1024[:4]}, "runs/s37/latent_up.pt")
