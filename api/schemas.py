"""The API's JSON, in and out (Pydantic v2). Limits here only keep junk out early; the rules
(what an email, a password, a title or code may be) are core's, and its errors come back as
the same 422s."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from core.entities import Page, Snippet, SnippetSummary, User

MAX_EMAIL_CHARS = 254
MAX_PASSWORD_CHARS = 1024
MAX_ONE_TIME_CODE_CHARS = 64
MAX_TITLE_CHARS = 1000
MAX_LANGUAGE_CHARS = 64
MAX_INIT_DATA_CHARS = 8192


def _unicode(value: str) -> str:
    """Refuses lone surrogates (JSON's `\\ud800` decodes to one): no database or email can
    hold them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no unpaired surrogates)") from None
    return value


Text = Annotated[str, AfterValidator(_unicode)]


def _text(max_length: int, **extra: Any) -> Any:
    return Field(max_length=max_length, **extra)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Credentials(_Input):
    email: Text = _text(MAX_EMAIL_CHARS, examples=["ada@example.com"])
    password: Text = _text(MAX_PASSWORD_CHARS, examples=["correct horse battery staple"])


class VerifyRequest(_Input):
    code: Text = _text(MAX_ONE_TIME_CODE_CHARS, description="The code from the verification email.")

    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "K7PM-Q2XD"}]})


class ResetRequest(_Input):
    email: Text = _text(MAX_EMAIL_CHARS, examples=["ada@example.com"])


class ResetConfirmation(_Input):
    email: Text = _text(MAX_EMAIL_CHARS, examples=["ada@example.com"])
    code: Text = _text(MAX_ONE_TIME_CODE_CHARS, examples=["K7PM-Q2XD"])
    new_password: Text = _text(MAX_PASSWORD_CHARS, examples=["a new long passphrase"])


class TelegramSignIn(_Input):
    init_data: Text = _text(
        MAX_INIT_DATA_CHARS,
        description="`Telegram.WebApp.initData`, exactly as the Mini App received it.",
        examples=["query_id=AAH…&user=%7B%22id%22%3A42%7D&auth_date=1700000000&hash=…"],
    )


MAX_TAGS_GIVEN = 50
"""More than core allows (10): the limit's own 422 names the rule."""
TagList = Annotated[list[Annotated[Text, Field(max_length=64)]], Field(max_length=MAX_TAGS_GIVEN)]


class NewSnippet(_Input):
    title: Text = _text(MAX_TITLE_CHARS, examples=["Quicksort"])
    code: Text = Field(examples=["def quicksort(xs):\n    ..."])
    language: Text | None = _text(
        MAX_LANGUAGE_CHARS,
        default=None,
        description="A language name or alias (`python`, `js`); detected from the code when "
        "left out.",
        examples=["python"],
    )
    tags: TagList | None = Field(
        default=None,
        description="Lower-cased; at most 10, each at most 32 characters. `#words` in the "
        "title are tags too.",
        examples=[["python", "sorting"]],
    )


class SnippetChanges(_Input):
    title: Text | None = _text(MAX_TITLE_CHARS, default=None, examples=["Quicksort, in place"])
    code: Text | None = Field(default=None, examples=["def quicksort(xs, lo=0, hi=None):\n    ..."])
    language: Text | None = _text(MAX_LANGUAGE_CHARS, default=None, examples=["python"])
    tags: TagList | None = Field(
        default=None, description="Replaces the snippet's tags.", examples=[["python"]]
    )

    @model_validator(mode="after")
    def _something(self) -> SnippetChanges:
        if self.title is None and self.code is None and self.language is None and self.tags is None:
            raise ValueError("name at least one of title, code, language, tags")
        return self


# Out ----------------------------------------------------------------------------------------


class Notice(BaseModel):
    message: str


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="Seconds until the token expires.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIs…",
                    "token_type": "bearer",
                    "expires_in": 86400,
                }
            ]
        }
    )


class UserOut(BaseModel):
    id: UUID
    email: str
    is_verified: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id, email=user.email, is_verified=user.is_verified, created_at=user.created_at
        )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b6f3f0e-8a5e-4f43-9d2a-6f1f8e8f2c11",
                    "email": "ada@example.com",
                    "is_verified": True,
                    "created_at": "2026-01-02T10:00:00Z",
                }
            ]
        }
    )


SNIPPET_EXAMPLE: dict[str, Any] = {
    "id": "5d0c7a52-2d4e-4c2a-9a59-1b8e8f7e2a10",
    "ref": 3,
    "title": "Quicksort",
    "code": "def quicksort(xs):\n    ...",
    "language": "Python",
    "tags": ["python", "sorting"],
    "created_at": "2026-01-02T10:00:00Z",
    "updated_at": "2026-01-02T10:00:00Z",
}


class SnippetOut(BaseModel):
    id: UUID
    ref: int = Field(description="The owner's short number: `/snippets/3`, `/get 3` in chat.")
    title: str
    code: str
    language: str
    tags: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime

    model_config = ConfigDict(json_schema_extra={"examples": [SNIPPET_EXAMPLE]})

    @classmethod
    def of(cls, snippet: Snippet) -> SnippetOut:
        return cls(
            id=snippet.id,
            ref=snippet.ref,
            title=snippet.title,
            code=snippet.code,
            language=snippet.language,
            tags=list(snippet.tags),
            created_at=snippet.created_at,
            updated_at=snippet.updated_at,
        )


class SnippetSummaryOut(BaseModel):
    id: UUID
    ref: int
    title: str
    language: str
    tags: list[str] = Field(default_factory=list)
    created_at: datetime


class SnippetPage(BaseModel):
    items: list[SnippetSummaryOut]
    total: int
    limit: int
    offset: int

    @classmethod
    def of(cls, page: Page[SnippetSummary], *, limit: int, offset: int) -> SnippetPage:
        """The items are read from the summaries' attributes in one validation (in
        pydantic-core), not one model built per item in Python: 20 items cost a third less."""
        fields = {"items": page.items, "total": page.total, "limit": limit, "offset": offset}
        return cls.model_validate(fields, from_attributes=True)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            k: v
                            for k, v in SNIPPET_EXAMPLE.items()
                            if k not in {"code", "updated_at"}
                        }
                    ],
                    "total": 1,
                    "limit": 20,
                    "offset": 0,
                }
            ]
        }
    )


class ErrorOut(BaseModel):
    detail: str


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where: `body`, `query` or `path`, then the field.")
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    detail: list[FieldError]


# Organising: tags, versions, import ---------------------------------------------------------


class TagCount(BaseModel):
    tag: str
    count: int = Field(description="How many of your snippets carry it.")


class RevisionOut(BaseModel):
    number: int
    title: str
    language: str
    created_at: datetime = Field(description="When this version was made.")
    size: int = Field(description="Bytes of code (UTF-8).")
    first_changed_line: str = Field(
        description="The first line that differs from the version before."
    )
    current: bool
    code: str | None = Field(default=None, description="In `GET …/revisions/{n}` only.")


class ImportOut(BaseModel):
    added: int
    skipped: int = Field(description="Identical in title and code to a snippet you have.")
