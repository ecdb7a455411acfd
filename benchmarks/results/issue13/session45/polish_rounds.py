# polish_rounds.py SRC_TAG SEED NEW_TAG THRESH ROUNDS CFG: sundae's polish applied ROUNDS times to cached raw tokens
import sys, torch
from nar.pipelines.pipeline import Pipeline
torch.set_num_threads(1)
src, seed, new, th, rounds, cfg = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
p = Pipeline.load(priors={"sundae": "nar/assets/models/sundae.safetensors"}, device="cpu").prior("sundae").eval()
toks = torch.load(f"runs/s40/tok_{src}_s{seed}.pt"); n = toks.shape[0]; cls = torch.arange(n) % 6
out = toks.clone()
with torch.inference_mode():
    for r in range(rounds):
        for i in range(0, n, 8):
            lg = p._guided_logits(out[i:i+8], cls[i:i+8], cfg, p.patch_shift(20 + r)).float()
            pc = lg.softmax(-1).gather(-1, out[i:i+8, ..., None]).squeeze(-1)
            out[i:i+8] = torch.where(pc < th, lg.argmax(-1), out[i:i+8])
        print("round", r, "changed", (out != toks).float().mean().item(), flush=True)
torch.save(out, f"runs/s40/tok_{new}_s{seed}.pt")
