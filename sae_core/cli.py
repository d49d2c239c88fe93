"""Command line: `python -m sae_core train|figures|...` produces what the app shows.

Bad arguments or data exit with status 2 and one line on stderr. Progress goes to
stderr through logging, one line per --log-every iterations.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from .config import ORIGINAL_SPARSITY_TARGETS, SAEConfig
from .data import SOURCE_HELP, spread_sample

logger = logging.getLogger("sae_core")



class UsageError(ValueError):
    """A bad command-line value; reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sparse autoencoder's hyperparameters as options."""
    defaults = SAEConfig()
    parser.add_argument("--rho", type=float, default=defaults.sparsity_target,
                        help="sparsity target rho, the desired mean activation, in (0, 1) (default %(default)s)")
    parser.add_argument("--beta", type=float, default=defaults.sparsity_weight,
                        help="weight beta of the KL sparsity penalty, >= 0 (default %(default)s)")
    parser.add_argument("--lambda", dest="weight_decay", type=float, default=defaults.weight_decay,
                        help="weight decay lambda, >= 0 (default %(default)s)")
    parser.add_argument("--hidden", type=int, default=defaults.n_hidden,
                        help="number of hidden units (default %(default)s)")
    parser.add_argument("--iterations", type=int, default=defaults.max_iterations,
                        help="maximum L-BFGS iterations (default %(default)s)")
    parser.add_argument("--samples", type=int, default=None,
                        help="train on N digits drawn at random, the same for every run (default: all digits)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="seed of the weight initialisation (default %(default)s)")
    parser.add_argument("--data", default="embedded", help="data set: " + SOURCE_HELP)
    parser.add_argument("--log-every", type=int, default=25, metavar="N",
                        help="print a progress line every N iterations (default %(default)s)")


def config_from_args(args: argparse.Namespace, **overrides) -> SAEConfig:
    values = dict(
        sparsity_target=args.rho, sparsity_weight=args.beta, weight_decay=args.weight_decay,
        n_hidden=args.hidden, max_iterations=args.iterations, n_samples=args.samples,
        seed=args.seed,
    )
    return SAEConfig(**(values | overrides))


def progress_logger(every: int):
    """A training callback that logs one fixed-format line every `every` iterations."""
    def log_progress(progress) -> None:
        if progress.iteration % every == 0 or progress.iteration == progress.max_iterations:
            logger.info("%s", progress.line())
    return log_progress


def _load_data(source: str):
    from .data import load_dataset

    dataset = load_dataset(source)
    logger.info("data: %s, %d digits", dataset.provenance, len(dataset))
    return dataset


def write_model_outputs(out: Path, model, dataset, n_digits: int = 100) -> None:
    """Write weights.npz, metrics.json, w1_mosaic.png and reconstructions.png into out."""
    from .images import feature_mosaic, reconstruction_sheet, save_png
    from .model import reconstruct
    from .store import save_model_dir

    out.mkdir(parents=True, exist_ok=True)
    save_model_dir(out, model.weights, model.metrics)
    save_png(feature_mosaic(model.weights.W1), out / "w1_mosaic.png")
    originals = dataset.images[spread_sample(dataset.labels, n_digits)]
    save_png(reconstruction_sheet(originals, reconstruct(model.weights, originals)),
             out / "reconstructions.png")


def _prepare_out(path: str) -> Path:
    """Create the output folder before any slow work, so a bad --out fails at once."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(
            f"--out {path}: cannot create the folder ({error.strerror}); choose a writable folder"
        ) from error
    if not os.access(out, os.W_OK):
        raise UsageError(f"--out {path}: the folder is not writable; choose another")
    return out


def run_train(args: argparse.Namespace) -> int:
    if args.log_every < 1:
        raise UsageError(f"--log-every is {args.log_every}; it must be >= 1")
    config = config_from_args(args)
    dataset = _load_data(args.data)
    config = config.with_samples_for(len(dataset))
    out = _prepare_out(args.out)

    from .store import TrainedModel
    from .training import train

    result = train(config, dataset.images, progress=progress_logger(args.log_every))
    metrics = dict(result.metrics, data_fingerprint=dataset.fingerprint,
                   data_provenance=dataset.provenance)

    write_model_outputs(out, TrainedModel(result.weights, metrics, config), dataset)
    logger.info("wrote %s", out)
    print(json.dumps({k: metrics[k] for k in ("cost", "reconstruction", "weight_decay", "sparsity",
                                              "mean_activation", "seconds")}))
    return 0


def run_figures(args: argparse.Namespace) -> int:
    if args.log_every < 1:
        raise UsageError(f"--log-every is {args.log_every}; it must be >= 1")
    if args.rho != SAEConfig().sparsity_target:
        raise UsageError("figures trains every rho in 0.01, 0.1, 0.5, 0.8; drop --rho "
                         "or use 'train --rho' for one value")
    config_from_args(args)  # validate before the slow imports
    dataset = _load_data(args.data)
    out = _prepare_out(args.out)

    from .images import comparison_sheet, feature_mosaic, reconstruction_sheet, save_png
    from .model import reconstruct
    from .store import ModelStore

    store = ModelStore(args.models)
    originals = dataset.images[spread_sample(dataset.labels, 100)]
    mosaics, captions = [], []
    for rho in ORIGINAL_SPARSITY_TARGETS:
        config = config_from_args(args, sparsity_target=rho)
        stored, _problem = store.lookup(config, dataset)
        logger.info("rho=%g: %s", rho, "loading the stored model" if stored else "training")
        model = stored or store.get_or_train(config, dataset, progress=progress_logger(args.log_every))
        mosaic = feature_mosaic(model.weights.W1)
        save_png(mosaic, out / f"w1_mosaic_rho{rho:g}.png")
        save_png(reconstruction_sheet(originals, reconstruct(model.weights, originals)),
                 out / f"reconstructions_rho{rho:g}.png")
        mosaics.append(mosaic)
        captions.append(
            f"rho = {rho:g}   mean activation = {model.metrics['mean_activation']:.3f}"
        )
    save_png(comparison_sheet(mosaics, captions), out / "sparsity_comparison.png")
    logger.info("wrote %s", out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m sae_core", description="Sparse autoencoders on MNIST, headless.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train_parser = commands.add_parser("train", help="train one sparse autoencoder and write its files")
    add_config_arguments(train_parser)
    train_parser.add_argument("--out", required=True, help="folder for weights.npz, metrics.json and the PNGs")
    train_parser.set_defaults(run=run_train)

    figures_parser = commands.add_parser(
        "figures", help="W1 mosaics and reconstructions for rho in 0.01, 0.1, 0.5, 0.8")
    add_config_arguments(figures_parser)
    figures_parser.add_argument("--out", required=True, help="folder for the PNGs")
    figures_parser.add_argument("--models", default="models",
                                help="model store folder to load from and save to (default %(default)s)")
    figures_parser.set_defaults(run=run_figures)

    for add_command in _extra_commands():
        add_command(commands)
    return parser


def _extra_commands():
    """Commands defined in their own modules."""
    from .lab_cli import add_reconstruct_command
    from .semisup_cli import add_compare_command

    return [add_reconstruct_command, add_compare_command]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except (ValueError, OSError) as error:
        # ValueError covers UsageError, config validation, DatasetError and StoreError.
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
