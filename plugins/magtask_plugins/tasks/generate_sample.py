"""`magtask sample` on a generate run: draw new videos from its head, decode them with its tokenizer.

--out FILE.gif / .mp4: a labelled grid, a row per class. --out FILE.safetensors: the samples layout
of the task (format=magtask-samples: videos, labels, codes, indices; metadata class_names), so
`magtask render` reads it too once it is named RUN_DIR/samples.safetensors."""

from __future__ import annotations

import json

from magtask.console import err

OUTPUTS = (".gif", ".mp4", ".safetensors")


def sample(run, class_name, n, out) -> dict:
    from magtask.render import sample_frames, write_animation
    from magtask.tensorfile import write_tensors
    from magtask_plugins.tasks.generate import draw, requested_labels

    names = run.class_names
    labels = requested_labels(run.head, {"samples": n, "class_name": class_name}, names)
    videos, codes, indices = draw(run.tokenizer, run.head, labels, run.seed, run.device, run.head_spec.name)
    if out.suffix.lower() == ".safetensors":
        write_tensors(out, {"videos": videos, "labels": labels, "codes": codes, "indices": indices},
                      {"format": "magtask-samples", "class_names": json.dumps(list(names)), "task": "generate",
                       "head": run.head_spec.name, "run_dir": str(run.run_dir), "seed": str(run.seed)})
    else:
        write_animation(out, sample_frames(videos, labels, None, names, per_row=max(1, min(int(n), 8))))
    result = {"run_dir": str(run.run_dir), "task": "generate", "head": run.head_spec.name, "out": str(out),
              "n_samples": int(len(videos)), "seed": run.seed,
              "classes": [names[c] if c >= 0 else None for c in labels.tolist()]}
    if not run.quiet:
        which = f"class {class_name}" if class_name else ("every class" if (labels >= 0).any() else "unconditional")
        err.print(f"wrote {len(videos)} samples ({which}) to {out}", soft_wrap=True, highlight=False)
    return result
