"""``memprobe finetune | predict | heatmap``."""

from __future__ import annotations

from pathlib import Path

from memprobe.finetune.recipes import RECIPES


def _scorer_arguments(parser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="a peer model that outputs memorability: resmem")
    which.add_argument("--checkpoint", type=Path, help="a checkpoint written by `memprobe finetune`")


def register(subparsers) -> None:
    finetune = subparsers.add_parser(
        "finetune", help="fine-tune a model for memorability, fold by fold (resumes an interrupted run)",
        description="Recipes: " + " | ".join(f"{r.name}: {r.description}" for r in RECIPES.values()),
    )
    finetune.add_argument("model", help="zoo identifier, e.g. torchvision:resnet50 or resmem:resnet152")
    finetune.add_argument("--data", default="lnsim", help="lnsim, lamem or folder:<images>[:<scores.csv>]")
    finetune.add_argument("--head", default="linear", choices=["linear", "resmemnet", "amnet"])
    finetune.add_argument("--recipe", choices=sorted(RECIPES), help="default: paper (linear) or the head's")
    finetune.add_argument("--folds", type=int, default=5)
    finetune.add_argument("--out", type=Path,
                          help="run folder (default ./finetune/<model>_<head>_<recipe>_<data>)")
    finetune.add_argument("--frozen", action="store_true",
                          help="keep the backbone fixed: cache its features once, train the head on them")
    finetune.add_argument("--weights", default="pretrained", help="pretrained, random or a state-dict file")
    finetune.add_argument("--max-epochs", type=int, help="cap the recipe's number of epochs")
    finetune.add_argument("--clip-grad-norm", type=float,
                          help="cap the gradients' global norm before each step (default: none)")
    finetune.add_argument("--seed", type=int, default=0)
    finetune.add_argument("--device", help="cpu, cuda, cuda:1 (default $MEMPROBE_DEVICE or CUDA if present)")
    finetune.add_argument("--skip-bad-images", action="store_true",
                          help="skip images that fail to decode (listed in the metrics) instead of stopping")
    finetune.set_defaults(func=run_finetune)

    predict = subparsers.add_parser("predict", help="memorability scores of images → CSV")
    predict.add_argument("images", nargs="+", type=Path)
    _scorer_arguments(predict)
    predict.add_argument("--out", type=Path, help="CSV to write (default: print to stdout)")
    predict.add_argument("--device")
    predict.set_defaults(func=run_predict)

    heatmap = subparsers.add_parser("heatmap", help="Grad-CAM overlays of a memorability score")
    heatmap.add_argument("images", nargs="+", type=Path)
    _scorer_arguments(heatmap)
    heatmap.add_argument("--out", type=Path, required=True, help="folder for <image>_gradcam.png files")
    heatmap.add_argument("--layer", help="module path of the target layer (default: the last residual block)")
    heatmap.set_defaults(func=run_heatmap)


def run_finetune(args) -> int:
    from memprobe.finetune.run import finetune

    _, metrics = finetune(
        args.model, data=args.data, head=args.head, recipe=args.recipe, folds=args.folds, out=args.out,
        seed=args.seed, device=args.device, frozen=args.frozen, weights=args.weights,
        max_epochs=args.max_epochs, clip_grad_norm=args.clip_grad_norm,
        on_decode_error="skip" if args.skip_bad_images else "raise",
    )
    print(metrics.to_string(index=False))
    return 0


def run_predict(args) -> int:
    from memprobe.finetune.predict import load_scorer, predict_images

    table = predict_images(load_scorer(args.model, args.checkpoint), args.images, device=args.device)
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"wrote {len(table)} scores to {args.out}")
    else:
        print(table.to_csv(index=False), end="")
    return 0


def run_heatmap(args) -> int:
    from memprobe.finetune.heatmap import save_heatmaps
    from memprobe.finetune.predict import load_scorer

    written = save_heatmaps(load_scorer(args.model, args.checkpoint), args.images, args.out, args.layer)
    print(f"wrote {len(written)} heatmaps to {args.out}")
    return 0
