"""Where the sources (CRMs, files, the demo) and the delivery channels (email, Slack, Teams)
declare themselves, each in its own module:

    @connector("pipedrive", settings=PipedriveSettings, capabilities={"api"})
    class PipedriveConnector: ...

The config's ``crm`` section is generated from the sources registered here (as the ``signals``
section is from the signals'), so adding a CRM is one module plus its tests: nothing in
``config.py`` names a connector, and ``config.py`` imports none. The built-in modules are loaded
the first time the registry is read (for sources, every module of ``leadprep.connectors``, so a
new CRM is found without being listed anywhere); a test or a plugin registers its own the same
way.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """One registered kind: its class, its config section's model (None: it takes no settings),
    and what it can do (``capabilities``: ``api`` pulls over the network, ``demo`` is the bundled
    sample; channels: ``email``, ``chat``)."""

    kind: str
    factory: Any
    settings: type[BaseModel] | None
    capabilities: frozenset[str]

    def can(self, capability: str) -> bool:
        return capability in self.capabilities


class Registry:
    """The kinds of one role (sources or channels), by name, in registration order."""

    def __init__(self, role: str, builtin: tuple[str, ...], package: str | None = None) -> None:
        self.role = role
        self.builtin = builtin  # modules that register the built-in kinds, in the order listed
        self.package = package  # every module in it is loaded too: a new one needs no listing
        self._entries: dict[str, Entry] = {}
        self._loaded = False

    def register(
        self,
        kind: str,
        *,
        settings: type[BaseModel] | None = None,
        capabilities: Iterable[str] = (),
    ) -> Callable[[T], T]:
        """The class decorator: ``kind`` is the name the config uses (``crm.kind: kind``)."""

        def decorate(factory: T) -> T:
            known = self._entries.get(kind)
            if known is not None and known.factory is not factory:
                raise ValueError(f"two {self.role}s register the kind {kind!r}")
            self._entries[kind] = Entry(kind, factory, settings, frozenset(capabilities))
            return factory

        return decorate

    def unregister(self, kind: str) -> None:
        """Take a kind out again (a test's own registration)."""
        self._entries.pop(kind, None)

    def entries(self) -> dict[str, Entry]:
        """Every kind: the built-in ones in the order of ``builtin`` (whichever module happened
        to be imported first), then the others in the order they registered."""
        self._load()
        order = {module: i for i, module in enumerate(self.builtin)}
        ranked = sorted(
            self._entries.values(),
            key=lambda e: order.get(getattr(e.factory, "__module__", ""), len(order)),
        )
        return {e.kind: e for e in ranked}

    def get(self, kind: str) -> Entry | None:
        return self.entries().get(kind)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # first: a built-in module may read the registry while loading
        for module in self.builtin:
            importlib.import_module(module)
        if self.package is not None:
            found = importlib.import_module(self.package)
            for info in pkgutil.iter_modules(found.__path__, f"{self.package}."):
                importlib.import_module(info.name)


SOURCES = Registry(
    "source",
    (
        "leadprep.connectors.hubspot",
        "leadprep.connectors.salesforce",
        "leadprep.connectors.file",
        "leadprep.connectors.demo",
    ),
    package="leadprep.connectors",  # a new connector module there registers itself
)
CHANNELS = Registry("channel", ("leadprep.mail.channel", "leadprep.chat.channel"))

connector = SOURCES.register
channel = CHANNELS.register
