"""Model card and Hub publishing for a finished run.

`python -m model_card build RUN_DIR` writes the card and its figures into the run directory;
`python -m model_card push RUN_DIR --repo_id USER/NAME` rebuilds it for that repo and publishes.

Usage errors end with one `error: ...` line on stderr and exit status 2, like the training command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model_card.card import build_card, default_space_id
from train.errors import cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_card", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def card_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("run_dir", type=Path, help="a finished run: the --output_dir of `python -m train`")
        sub.add_argument(
            "--space_id", help="the demo Space for the gradio_client snippet (default: REPO_ID-demo)"
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
    # Imported here: only pushing needs the network code.
    from model_card.push import publish

    url = publish(
        args.run_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        space_id=args.space_id or default_space_id(args.repo_id),
        sweep=args.sweep,
        base_model=args.base_model,
    )
    print(f"Published {args.repo_id}: {url}")


if __name__ == "__main__":
    main()
