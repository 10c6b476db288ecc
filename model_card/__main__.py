"""Model card and Hub publishing for a finished run.

`python -m model_card build RUN_DIR` writes the card and its figures into the run directory;
`python -m model_card push RUN_DIR --repo_id USER/NAME` rebuilds it for that repo and publishes;
`python -m model_card deploy-space --space_id USER/SPACE --model_id USER/NAME` publishes space/ as the
Gradio Space serving that model. A card names a demo Space only when given one with --space_id.

Usage errors end with one `error: ...` line on stderr and exit status 2, like the training command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model_card.card import build_card
from train.errors import cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_card", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def card_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("run_dir", type=Path, help="a finished run: the --output_dir of `python -m train`")
        sub.add_argument(
            "--space_id",
            help="the demo Space (USER/NAME) to link and call in the gradio_client snippet (default: none)",
        )
        sub.add_argument(
            "--sweep", type=Path, help="sweep table to show (default: RUN_DIR/../sweep.csv if present)"
        )
        sub.add_argument("--base_model", help="Hub id of the base model, when the run named a local folder")

    build = commands.add_parser("build", help="write README.md and its figures into the run directory")
    card_options(build)
    build.add_argument(
        "--repo_id", help="repo id for the usage snippets (default: YOUR_USERNAME/<run dir name>)"
    )

    push = commands.add_parser("push", help="build the card, then upload the run to the Hub in one commit")
    card_options(push)
    push.add_argument("--repo_id", required=True, help="USER/NAME or ORG/NAME; created if missing")
    push.add_argument(
        "--private", action="store_true", help="create the repo private (an existing repo is kept as is)"
    )
    push.add_argument("--revision", help="branch to commit to (created from main if missing; default: main)")
    push.add_argument(
        "--no_onnx",
        action="store_true",
        help="publish no onnx/model.onnx and onnx/model_quantized.onnx (for transformers.js and ONNX Runtime)",
    )

    space = commands.add_parser("deploy-space", help="publish space/ as a Gradio Space serving a Hub model")
    space.add_argument("--space_id", required=True, help="the Space to create or update, USER/NAME")
    space.add_argument("--model_id", required=True, help="the Hub model the Space serves, USER/NAME")
    space.add_argument("--private", action="store_true", help="create the Space private")
    return parser


@cli
def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "build":
        path = build_card(
            args.run_dir,
            repo_id=args.repo_id,
            space_id=args.space_id,
            sweep=args.sweep,
            base_model=args.base_model,
        )
        print(f"Model card written to {path}")
        return
    if args.command == "deploy-space":
        from model_card.space_deploy import deploy  # imported here: only publishing needs the network code

        url = deploy(args.space_id, args.model_id, private=args.private)
        print(f"Deployed {args.space_id} serving {args.model_id}: {url}")
        return
    from model_card.push import publish

    url = publish(
        args.run_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        space_id=args.space_id,
        sweep=args.sweep,
        base_model=args.base_model,
        onnx=not args.no_onnx,
    )
    print(f"Published {args.repo_id}: {url}")


if __name__ == "__main__":
    main()
