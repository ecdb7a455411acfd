# polish_make.py SRC_TAG SEED NEW_TAG THRESH : tokens whose code the guided model gives p < THRESH -> argmax
import sys, torch
src, seed, new, th = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
t = torch.load(f"runs/s40/tok_{src}_s{seed}.pt"); pr = torch.load(f"runs/s45/probe_{src}_s{seed}.pt")
out = torch.where(pr["p"] < th, pr["argmax"], t)
print("changed", (out != t).float().mean().item())
torch.save(out, f"runs/s40/tok_{new}_s{seed}.pt")
