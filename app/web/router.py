"""The web page: one HTML shell at `/`; everything it shows comes from the JSON API.

The page holds no user data when served: it is the same for everyone and signs in from the
browser (cookie login plus the CSRF header). Scripts and styles are files under /static,
so the strict Content-Security-Policy (no inline script or style) holds. What the page
needs of the server's own tables (the platforms, `app/assistant/platforms.py`) it gets as
a JSON data block (`<script type="application/json">`), which is data, not script: the
policy does not apply to it and the browser never runs it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import Field

from app.assistant.factory import describe_assistant, offered_models
from app.assistant.platforms import page_data
from app.auth.manager import fastapi_users
from app.auth.models import User
from app.auth.schemas import UserRead
from app.core.dependencies import SettingsDep
from app.core.schemas import ApiModel
from app.web.assets import STATIC_PREFIX, WEB_DIR, asset_version

templates = Jinja2Templates(directory=WEB_DIR / "templates")
router = APIRouter(include_in_schema=False)
# What the page asks at start: signed in or not, as a 200 either way (a 401 here would be
# logged as an error in the browser's console on every signed-out visit).
session_router = APIRouter(prefix="/api", tags=["auth"])
_optional_user = fastapi_users.current_user(optional=True, active=True)


class SignInState(ApiModel):
    signed_in: bool
    user: UserRead | None = None


@session_router.get("/session", response_model=SignInState)
async def sign_in_state(user: Annotated[User | None, Depends(_optional_user)]) -> SignInState:
    if user is None:
        return SignInState(signed_in=False)
    return SignInState(signed_in=True, user=UserRead.model_validate(user))


class AssistantOut(ApiModel):
    backend: str = Field(description="`local`, `openai` or `builtin`.")
    model: str | None = Field(description="The language model's name; null when none answers.")
    label: str = Field(description="What the page shows: the model, and where it runs.")
    local: bool = Field(description="The model runs on this server.")
    suggestions: list[str] = Field(
        description="What the empty chat suggests, by what this assistant does: questions "
        "and writing when a language model answers, posts to draft in any case."
    )
    max_message_chars: int = Field(description="The longest message `POST /api/chat` takes.")
    session_ttl_seconds: int = Field(
        description="SESSION_TTL_SECONDS: a temporary conversation is deleted this long after "
        "its last message (a regular one is archived)."
    )


# A language model answers questions and writes; the drafting assistant drafts posts with
# or without one.
MODEL_SUGGESTIONS = (
    "Explain how the tides work, in three short paragraphs",
    "Write a Python function that checks whether a word is a palindrome",
    "Compare trains and planes for a 500 km trip, in a table",
)
POST_SUGGESTIONS = (
    "Create a Facebook post about Diwali with image",
    "Write a LinkedIn post about hiring engineers",
)


@session_router.get("/assistant", response_model=AssistantOut, tags=["assistant"])
async def assistant_info(request: Request, settings: SettingsDep) -> AssistantOut:
    """Who answers in the chat: the page names the model in use, and suggests what it does;
    and the chat's limits: the longest message, how long an idle conversation lives."""
    info = describe_assistant(request.app.state.assistant)
    suggestions = [*MODEL_SUGGESTIONS, POST_SUGGESTIONS[0]] if info.model else [*POST_SUGGESTIONS]
    return AssistantOut(
        backend=info.backend,
        model=info.model,
        label=info.label,
        local=info.local,
        suggestions=suggestions,
        max_message_chars=settings.max_message_chars,
        session_ttl_seconds=settings.session_ttl_seconds,
    )


class ModelOut(ApiModel):
    id: str = Field(description="What `model` takes in POST /api/chat and PATCH /api/sessions.")
    name: str = Field(description="The name users read (the page's picker).")
    label: str = Field(description="What the page shows under the message box.")
    backend: str = Field(description="`local`, `openai` or `builtin`.")
    local: bool = Field(description="The model runs on this server.")
    default: bool = Field(description="Answers conversations that chose no model.")


class ModelsOut(ApiModel):
    models: list[ModelOut] = Field(description="The default model first.")


@session_router.get("/models", response_model=ModelsOut, tags=["assistant"])
async def list_models(request: Request) -> ModelsOut:
    """The models a conversation may choose, with their display names."""
    models = offered_models(request.app.state.assistant)
    return ModelsOut(
        models=[
            ModelOut(
                id=m.id,
                name=m.name,
                label=m.label,
                backend=m.backend,
                local=m.local,
                default=i == 0,
            )
            for i, m in enumerate(models)
        ]
    )


def _page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "index.html",
        {"static": STATIC_PREFIX, "v": asset_version(), "platforms": page_data()},
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    return _page(request)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
    return _page(request)


# Links in emails land here; the token is in the #fragment, so it never reaches a log.
@router.get("/reset-password", response_class=HTMLResponse)
async def reset_page(request: Request) -> HTMLResponse:
    return _page(request)


@router.get("/verify-email", response_class=HTMLResponse)
async def verify_page(request: Request) -> HTMLResponse:
    return _page(request)
