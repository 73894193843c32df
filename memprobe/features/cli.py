"""``memprobe layers MODEL``: every layer (module call) with its output shape and unit count."""

from __future__ import annotations

from memprobe.features import list_layers


def register(subparsers) -> None:
    layers = subparsers.add_parser("layers", help="list a model's layers: output shape, units, skipped count")
    layers.add_argument("model", metavar="MODEL", help="model identifier, e.g. resmem:resnet152")
    layers.add_argument(
        "--weights", help="random (the default: enough to see the layers), pretrained (the default with "
        "--distinct: which outputs repeat another's values depends on the weights, as in a sweep) or a path"
    )
    layers.add_argument("--min-units", type=int, default=24, help="skip layers with fewer units (default 24)")
    layers.add_argument("--distinct", action="store_true",
                        help="also skip layers whose output repeats an earlier layer's values")
    layers.add_argument("--show-skipped", action="store_true", help="also list the skipped calls and why")
    layers.set_defaults(func=run_layers)


def run_layers(args) -> int:
    from memprobe.zoo import load_model

    model = load_model(args.model, weights=args.weights or ("pretrained" if args.distinct else "random"))
    listing = list_layers(model, min_units=args.min_units, distinct=args.distinct)
    table = listing.frame()
    table["relative_depth"] = table["relative_depth"].map("{:.3f}".format)
    print(table.to_string(index=False))
    print(
        f"{model.id}: {len(listing)} layers; {len(listing.skipped)} module calls skipped "
        f"(< {args.min_units} units, no tensor output{', repeated values' if args.distinct else ''}). "
        "taken: which tensor of a tuple/dict output is used."
    )
    if args.show_skipped:
        for name, reason in listing.skipped:
            print(f"  skipped {name}: {reason}")
    return 0
