"""The names of the step-by-step flows and of their steps (the keys of `bot.handlers.flows`)."""

from __future__ import annotations

import enum


class Flow(enum.StrEnum):
    SIGNUP = "signup"
    LOGIN = "login"
    VERIFY = "verify"
    RESET = "reset"
    SAVE = "save"
    EDIT = "edit"


class Step(enum.StrEnum):
    EMAIL = "email"
    PASSWORD = "password"  # noqa: S105 - a step's name, not a password
    CODE = "code"
