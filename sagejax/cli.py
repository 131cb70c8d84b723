"""The `sagejax` command: `sagejax <command> [flags]` runs one program, importing only that one (absl flags are
process-wide, so two commands' flags never meet). `sagejax --help` lists the commands."""

from __future__ import annotations

import runpy
import sys

# command → (module run as __main__, one line of help)
COMMANDS = {
    "train": ("sagejax.main", "train a config in a run directory (resumes it); --mode=eval evaluates it again"),
    "eval": ("sagejax.main", "evaluate the newest checkpoint of a run with every configured evaluator"),
    "export": ("sagejax.tools.export", "write a run's parameters and BatchNorm statistics to a .safetensors file"),
    "compare": ("sagejax.tools.compare", "methods × decoy families × seeds, each trained (or reused), one table"),
    "sweep": ("sagejax.tools.sweep", "grid or one-axis sweeps over config keys × seeds, chosen on validation"),
    "loao": ("sagejax.tools.loao", "leave-one-attack-type-out protocol of a PAD config"),
    "pad_benchmark": (
        "sagejax.tools.pad_benchmark",
        "open-set PAD: methods × seeds of leave-one-attack-out on Digit PAD",
    ),
    "digit_pad_csv": ("sagejax.tools.digit_pad_csv", "write Digit PAD as a CSV folder: a PAD task for sage_csv"),
    "label": ("sagejax.tools.label", "label a dataset split with a trained saliency teacher's maps"),
    "label_benchmark": ("sagejax.tools.label_benchmark", "time the teacher's forward against the whole labeler"),
    "benchmark": ("sagejax.tools.benchmark", "time compiled train steps (and input, corruptions) across settings"),
    "robustness": ("sagejax.tools.robustness", "accuracy of runs under ImageNet-C / CIFAR-10-C / MNIST-C corruptions"),
    "retrieval": ("sagejax.tools.retrieval", "retrieval mAP, P@k and precision–recall curves of runs' embeddings"),
    "panels": ("sagejax.tools.panels", "figure of images, human maps, SAGE's views and the model's attention"),
    "student_compare": ("sagejax.tools.student_compare", "the five student variants × seeds: probe and alignment"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "usage: sagejax <command> [flags]   (sagejax <command> --help for its flags)\n\ncommands:\n" + "\n".join(
        lines
    )


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        sys.exit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n{usage()}", file=sys.stderr)
        sys.exit(2)
    module, _ = COMMANDS[command]
    if command == "eval":
        rest = ["--mode=eval", *rest]
    sys.argv = [f"sagejax {command}", *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
