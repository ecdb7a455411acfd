import json,sys
for p in sys.argv[1:]:
    d=json.load(open(p+"/bench.json"))
    for r in d["quality"]:
        if r["kind"]=="prior": print(p, r["row"], r["steps"], "FD %.3f P %.3f R %.3f CF %.3f grad %.3f blocks %s t %.2f"%(r["fd_nar"],r["precision"],r["recall"],r["class_fidelity"],r["grad_energy_vs_real"],r["block_ratios"],r["time_per_image_s"]), r["class_fidelity_per_class"])
