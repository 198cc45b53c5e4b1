"""Terminals and their POS API keys. A key is "hy_" + an 8-character prefix + "_" + 40 random characters;
only the prefix (to find the terminal) and the key's SHA-256 are stored, so the key is shown once and a
leaked database does not give it away. The key carries 240 random bits, so a plain hash is enough: there is
nothing to guess that a slow password hash would protect."""

import hashlib
import hmac
import secrets
import string
from datetime import timedelta

import pghistory
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import Store, Terminal
from members.services import MemberError

KEY_START = "hy_"
PREFIX_LENGTH = 8
SECRET_LENGTH = 40
KEY_LENGTH = len(KEY_START) + PREFIX_LENGTH + 1 + SECRET_LENGTH
NAME_MAX = 60
LAST_USED_EVERY = timedelta(minutes=1)
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits  # readable in lists, and no "_" to confuse the parts


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _key_new() -> tuple[str, str]:
    """A fresh (key, prefix)."""
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    secret = secrets.token_urlsafe(SECRET_LENGTH * 3 // 4)  # 30 bytes are exactly 40 url-safe characters
    return f"{KEY_START}{prefix}_{secret}", prefix


def _key_save(terminal: Terminal, *, by: User | None, action: str, **fields: object) -> str:
    """Give the terminal a new key and save it with `fields`; returns the key."""
    while True:
        key, prefix = _key_new()
        terminal.key_prefix, terminal.key_hash = prefix, _key_hash(key)
        for name, value in fields.items():
            setattr(terminal, name, value)
        try:
            with transaction.atomic(), pghistory.context(user=by.pk if by else None, action=action):
                terminal.save()
        except IntegrityError as exc:
            if "key_prefix" in str(exc):
                continue  # two terminals drew the same prefix (one in 36^8): draw again
            raise
        return key


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise MemberError(_("Give the terminal a name."), "name")
    if len(name) > NAME_MAX:
        raise MemberError(_("A terminal name has at most %(n)s characters.") % {"n": NAME_MAX}, "name")
    return name


def terminal_list() -> QuerySet[Terminal]:
    return Terminal.objects.select_related("store").order_by("store__code", "name", "pk")


@transaction.atomic
def terminal_create(*, store: Store, name: str, by: User | None) -> tuple[Terminal, str]:
    """Add a terminal to an open store. Returns the terminal and its key, which is not kept and cannot be
    shown again. Raises MemberError (no name, a name the store already uses, a closed store)."""
    name = _clean_name(name)
    if not store.is_active:
        raise MemberError(_("This store is closed; terminals can only be added to an open store."), "store")
    if Terminal.objects.filter(store=store, name=name).exists():
        raise MemberError(_("This store already has a terminal with this name."), "name")
    terminal = Terminal(store=store, name=name, created_by=by)
    try:
        key = _key_save(terminal, by=by, action="terminal_create")
    except IntegrityError:  # the same name added at the same moment: the unique constraint decides
        raise MemberError(_("This store already has a terminal with this name."), "name") from None
    return terminal, key


@transaction.atomic
def terminal_rotate(*, terminal: Terminal, by: User | None) -> str:
    """Give the terminal a new key and return it; the old key stops working when this commits."""
    terminal = Terminal.objects.select_for_update().get(pk=terminal.pk)
    return _key_save(terminal, by=by, action="terminal_rotate", rotated_at=timezone.now())


def _terminal_set_active(terminal: Terminal, *, is_active: bool, by: User | None) -> Terminal:
    terminal = Terminal.objects.select_for_update().get(pk=terminal.pk)
    if terminal.is_active != is_active:
        terminal.is_active = is_active
        action = "terminal_activate" if is_active else "terminal_deactivate"
        with pghistory.context(user=by.pk if by else None, action=action):
            terminal.save(update_fields=["is_active"])
    return terminal


@transaction.atomic
def terminal_deactivate(*, terminal: Terminal, by: User | None) -> Terminal:
    """Refuse the terminal's key from now on (it is kept: activating the terminal brings it back)."""
    return _terminal_set_active(terminal, is_active=False, by=by)


@transaction.atomic
def terminal_activate(*, terminal: Terminal, by: User | None) -> Terminal:
    return _terminal_set_active(terminal, is_active=True, by=by)


def terminal_authenticate(key: str) -> Terminal | None:
    """The active terminal of an open store whose key this is, or None. Records when the terminal was last
    used, at most once a minute."""
    if not isinstance(key, str) or len(key) != KEY_LENGTH or not key.startswith(KEY_START):
        return None
    prefix = key[len(KEY_START) : len(KEY_START) + PREFIX_LENGTH]
    terminal = Terminal.objects.select_related("store").filter(key_prefix=prefix).first()
    if terminal is None or not hmac.compare_digest(terminal.key_hash, _key_hash(key)):
        return None
    if not (terminal.is_active and terminal.store.is_active):
        return None
    now = timezone.now()
    if terminal.last_used_at is None or terminal.last_used_at <= now - LAST_USED_EVERY:
        # guarded, so concurrent requests of one terminal write the row once a minute, not once each
        recent = Q(last_used_at__gt=now - LAST_USED_EVERY)
        Terminal.objects.filter(pk=terminal.pk).exclude(recent).update(last_used_at=now)
        terminal.last_used_at = now
    return terminal
