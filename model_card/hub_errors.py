"""One sentence for every Hub or network failure of publishing, the model's and the Space's alike.

Both publishers (`model_card.push` for the model, `model_card.space_deploy` for the Space) catch
`HUB_ERRORS` and raise `UserError(explain(err, repo_id))`, so a user sees the same words for the
same cause whichever repo they publish, and never the token or a traceback.
"""

from __future__ import annotations

from huggingface_hub import HfApi, constants
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

# The HTTP library's base error (httpx in huggingface_hub 1.x, httpx2 in 2.x): connection refused,
# timeouts and resets are its subclasses. Taken from HfHubHTTPError so both majors work.
TRANSPORT_ERROR: type[Exception] = HfHubHTTPError.__bases__[0]
# ConnectionError covers OfflineModeIsEnabled; other OSErrors (a local file) are not the Hub's doing.
HUB_ERRORS = (HfHubHTTPError, TRANSPORT_ERROR, ConnectionError)
NO_TOKEN = "No Hugging Face token found: set HF_TOKEN or log in with `hf auth login`."


def http_status(err: Exception) -> int | None:
    """The HTTP status of a Hub answer, None for a failure that got no answer."""
    return getattr(getattr(err, "response", None), "status_code", None)


def explain(err: Exception, repo_id: str) -> str:
    """One sentence for a Hub or network failure while publishing `repo_id`."""
    if isinstance(err, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set, so nothing can be published: unset it (or set it to 0) and retry."
    if isinstance(err, HfHubHTTPError):
        status = http_status(err)
        if status == 401:
            return (
                "The Hugging Face token was rejected (invalid or expired): "
                "set a valid HF_TOKEN or run `hf auth login`."
            )
        if status == 403:
            return (
                f"Your token may not write to {repo_id}: the namespace belongs to another user or "
                "organisation, or the token is read-only."
            )
        if status == 404:
            return (
                f"The Hub does not know {repo_id} or its namespace: "
                "check the repo id and that the token can write there."
            )
        detail = (err.server_message or "").strip().splitlines()
        return f"The Hub refused the upload to {repo_id} (HTTP {status}{': ' + detail[0] if detail else ''})."
    return (
        f"Cannot reach the Hugging Face Hub at {constants.ENDPOINT} ({type(err).__name__}): "
        "check the network connection or HF_ENDPOINT and retry."
    )


def remove_created_repo(api: HfApi, repo_id: str, repo_type: str | None = None) -> None:
    """Remove the repo a failed first publish created, so the Hub is left as it was (best effort)."""
    try:
        api.delete_repo(repo_id, repo_type=repo_type, missing_ok=True)
    except HUB_ERRORS:
        pass  # the repo holds no file of the run either way, and the original error is the one to report
