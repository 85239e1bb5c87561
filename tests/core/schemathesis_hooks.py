"""Schemathesis checks for the suite's run (loaded through SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

import schemathesis


@schemathesis.check
def problem_json_errors(ctx, response, case):
    """Every 4xx (and 5xx) is RFC 9457 problem+json with a status and a code; under `/v1`,
    OpenAI's error object (what its SDKs read) with a type and a code."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    if case.path.startswith("/v1/"):
        error = (
            response.json().get("error") if content_type.startswith("application/json") else None
        )
        if not isinstance(error, dict) or not (error.get("type") and error.get("code")):
            raise AssertionError(f"{response.status_code} not in OpenAI's error shape")
        return None
    if not content_type.startswith("application/problem+json"):
        raise AssertionError(f"{response.status_code} answered as {content_type!r}")
    body = response.json()
    if body.get("status") != response.status_code or not body.get("code"):
        raise AssertionError(f"not a problem document: {body!r}")
    return None
