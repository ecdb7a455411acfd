# ar v3 loss on the grids it trained on (runs/mg512 pool, first items), later items, an unseen stream, and held-out scenes (session 23).
import sys, glob, numpy as np, torch
sys.path.insert(0, '.')
sys.argv = ['x']
from benchmarks.ar_class_information import class_information, held_out_grids
from nar.priors import load_prior
from pathlib import Path
torch.set_num_threads(1)
prior = load_prior('nar/assets/models/ar.safetensors').eval()
def pool(d, first, n=36):
    files = sorted(glob.glob(d + '/*.npz'))
    z = np.load(files[first]); print(z.files)
    gs, ls = [], []
    for f in files[first:]:
        z = np.load(f); gs.append(z[z.files[0]]); ls.append(z[z.files[1]])
        if sum(len(g) for g in gs) >= n: break
    return torch.from_numpy(np.concatenate(gs)[:n].astype('int64')), torch.from_numpy(np.concatenate(ls)[:n].astype('int64'))
for name, (g, l) in {'mg512 first (trained)': pool('runs/mg512/fresh_tokens', 0),
                     'mg512 late': pool('runs/mg512/fresh_tokens', 1400),
                     'mg512s2 (unseen seed 4)': pool('runs/mg512s2/fresh_tokens', 0)}.items():
    gain, loss = class_information(prior, g, l)
    print(name, g.shape, 'loss %.3f classinfo %.4f' % (loss, gain.mean()))
g, l = held_out_grids(36, 512, Path('runs/ar_class_information/held_out_512.safetensors'))
gain, loss = class_information(prior, g, l); print('held-out', loss, gain.mean())
