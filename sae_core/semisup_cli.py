"""The `compare` command: the semi-supervised comparison without the app.

    python -m sae_core compare [--labels-per-class 100] [--seeds 5]
        [--pretrain-on labelled|all] [--sweep 10,20,50,100,200] [--data SOURCE] --out DIR

DIR receives results.csv (one row per seed x arm x budget), summary.json (mean and 95%
t interval per arm and budget, paired differences), details.json (training curves and
confusion matrices) and the charts as PNG. A short table of the means goes to stdout.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def parse_budgets(text: str) -> tuple[int, ...]:
    """Parse "10,20,50" into (10, 20, 50); raises ValueError naming the bad item."""
    budgets = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            budget = int(item)
        except ValueError:
            raise ValueError(
                f"--sweep item {item!r} is not an integer; give labels per class as e.g. 10,20,50"
            ) from None
        if budget < 1:
            raise ValueError(f"--sweep item {budget} is below 1; every budget must be at least 1")
        budgets.append(budget)
    if not budgets:
        raise ValueError(f"--sweep {text!r} contains no budget; give labels per class as e.g. 10,20,50")
    return tuple(budgets)


def _format_interval(entry: dict, signed: bool = False) -> str:
    sign = "+" if signed else ""
    if entry["ci_low"] is None:
        return f"{entry['mean']:{sign}.4f} (one seed: no interval)"
    return f"{entry['mean']:{sign}.4f}  95% CI [{entry['ci_low']:{sign}.4f}, {entry['ci_high']:{sign}.4f}]"


def summary_lines(summary: dict) -> list[str]:
    """Human-readable lines: each arm's mean and interval, then the paired differences."""
    lines = []
    for entry in summary["arms"]:
        lines.append(f"{entry['labels_per_class']:>4} per class  {entry['arm']:<20} "
                     f"{_format_interval(entry)}")
    for entry in summary["differences"]:
        pair = f"{entry['minuend']} - {entry['subtrahend']}"
        lines.append(f"{entry['labels_per_class']:>4} per class  {pair:<41} "
                     f"{_format_interval(entry, signed=True)}  "
                     f"(higher in {entry['wins']} of {entry['n_seeds']} seeds)")
    return lines


def run_compare(args: argparse.Namespace) -> int:
    from .semisup import ComparisonSettings

    # Check every argument before loading TensorFlow or the data.
    sweep = parse_budgets(args.sweep) if args.sweep is not None else ()
    settings = ComparisonSettings(
        labels_per_class=args.labels_per_class, n_seeds=args.seeds, pretrain_on=args.pretrain_on,
        sweep=sweep, sparsity_target=args.rho, sparsity_weight=args.beta,
        weight_decay=args.weight_decay, n_hidden=args.hidden, max_iterations=args.iterations,
        classifier_iterations=args.classifier_iterations,
        classifier_weight_decay=args.classifier_lambda, first_seed=args.first_seed,
    )

    from .data import load_dataset
    from .semisup import check_data, run_comparison, save_result

    dataset = load_dataset(args.data)
    check_data(settings, dataset.labels)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)  # fail on an unwritable folder before the long run
    logger.info("data: %s, %d digits", dataset.provenance, len(dataset))
    logger.info("settings: %s", settings.describe())

    pretrainer = None
    if args.models is not None:
        from .store import ModelStore

        store = ModelStore(args.models)

        def pretrainer(config, data, progress):
            return store.get_or_train(config, data, progress=progress).weights

    result = run_comparison(settings, dataset, pretrainer=pretrainer)

    from .semisup_charts import save_charts

    save_result(out, result)
    try:
        save_charts(result, out)
    except RuntimeError as error:  # vl-convert-python missing
        raise ValueError(f"{error}; {out} contains the tables but no PNG charts") from error
    logger.info("wrote %s", out)
    print("\n".join(summary_lines(result.summary)))
    return 0


def add_compare_command(subparsers) -> argparse.ArgumentParser:
    """Add `compare` to the CLI's subparsers; it runs run_compare."""
    from .config import SAEConfig
    from .data import SOURCE_HELP

    defaults = SAEConfig()
    parser = subparsers.add_parser(
        "compare",
        help="semi-supervised comparison: pretrained encoder + softmax, fine-tuned, random init",
        description=(
            "Draw k labelled digits per class for each seed, pretrain a sparse autoencoder, "
            "train a softmax on its frozen features, fine-tune the whole network, and train "
            "the same network from random weights; report accuracy on the unlabelled "
            "remainder with 95% t intervals over seeds."
        ),
    )
    parser.add_argument("--labels-per-class", type=int, default=100, metavar="K",
                        help="labelled digits drawn per class for each seed (default %(default)s)")
    parser.add_argument("--seeds", type=int, default=5, metavar="N",
                        help="number of seeds; each draws its own labelled set and initialisation "
                             "(default %(default)s)")
    parser.add_argument("--first-seed", type=int, default=0, metavar="S",
                        help="seeds run from S to S+N-1 (default %(default)s)")
    parser.add_argument("--pretrain-on", choices=("labelled", "all"), default="labelled",
                        help="pretrain the autoencoder on the labelled digits only, or on all "
                             "digits, labelled and unlabelled (default %(default)s)")
    parser.add_argument("--sweep", default=None, metavar="K1,K2,...",
                        help="also run these labels-per-class budgets, e.g. 10,20,50,100,200")
    parser.add_argument("--data", default="embedded", help="data set: " + SOURCE_HELP)
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for results.csv, summary.json, details.json and the PNG charts")
    parser.add_argument("--rho", type=float, default=0.1,
                        help="sparsity target rho of the autoencoder (default %(default)s)")
    parser.add_argument("--beta", type=float, default=defaults.sparsity_weight,
                        help="weight beta of the KL sparsity penalty (default %(default)s)")
    parser.add_argument("--lambda", dest="weight_decay", type=float, default=defaults.weight_decay,
                        help="weight decay lambda of the autoencoder (default %(default)s)")
    parser.add_argument("--hidden", type=int, default=defaults.n_hidden,
                        help="hidden units of the autoencoder and the classifiers (default %(default)s)")
    parser.add_argument("--iterations", type=int, default=defaults.max_iterations,
                        help="L-BFGS iterations of the autoencoder (default %(default)s)")
    parser.add_argument("--classifier-iterations", type=int, default=400, metavar="N",
                        help="maximum L-BFGS iterations of each classifier (default %(default)s)")
    parser.add_argument("--classifier-lambda", type=float, default=1e-4, metavar="LAMBDA",
                        help="weight decay on the softmax kernel (default %(default)s)")
    parser.add_argument("--models", default=None, metavar="DIR",
                        help="model store to load pretrained autoencoders from and save them to "
                             "(default: train them without storing)")
    parser.set_defaults(run=run_compare)
    return parser
