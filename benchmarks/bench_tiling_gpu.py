"""GPU check of the tiled tokenizer (issue 20), run once on an H200 through the device tool:
    PYTHONPATH=<site with vector_quantize_pytorch, einx, loguru, frozendict, torch_einops_utils>:. python3 benchmarks/bench_tiling_gpu.py
Its printout is recorded in benchmarks/results/tiling_cpu.md (GPU section)."""
import time, torch
from nar.tokenizer.load import load_tokenizer
from nar.tokenizer import tiling
from nar.core.memory import NarMemoryError
from nar.data.landscapes import LandscapeDataset
tok = load_tokenizer("nar/assets/models/tokenizer.safetensors", device="cuda")
print(torch.cuda.get_device_name(), flush=True)
def mad(a, b): return ((a.clamp(-1,1)-b.clamp(-1,1)).abs().mean()*127.5).item()
x = LandscapeDataset(1, 1024, seed=5)[0][0][None].cuda()
with torch.inference_mode():
    tokens = tok.encode(x)
    ref = tok.decode_tokens(tokens).float().cpu()
    t = tiling.tiled_decode(tok, tokens, 36, 4)
    print("1024 cuda tiled vs untiled MAD", mad(ref, t), "tiled encode agreement",
          (tiling.tiled_encode(tok, x, 512, 128) == tokens).float().mean().item(), flush=True)
    for S in (2048, 4096):
        tk = torch.randint(0, 512, (1, S // 16, S // 16), device="cuda")
        for name, fn in (("untiled", lambda: tok.decode_tokens(tk).float().cpu()), ("tiled", lambda: tiling.tiled_decode(tok, tk))):
            fn(); torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); t0 = time.perf_counter(); fn(); torch.cuda.synchronize()
            print(S, name, round(time.perf_counter() - t0, 3), "s, peak GPU", round(torch.cuda.max_memory_allocated() / 2**30, 2), "GiB", flush=True)
big = torch.randint(0, 512, (1, 1536, 1536), device="cuda")   # 24576²: untiled needs ~250 GB
try:
    tiling.decode_images(tok, big, tile=False, max_memory="2T")
    print("no OOM?!")
except NarMemoryError as e:
    print("CUDA OOM mapped:", e, "| http", e.http_status, flush=True)
torch.cuda.empty_cache()
print("after OOM, still works:", tiling.decode_images(tok, big[:, :64, :64]).shape, flush=True)
